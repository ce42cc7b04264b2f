"""Product images: uploaded by the menu's owner, judged by their bytes, re-encoded without
metadata, served by the API and by nginx, and their files removed when no longer used."""

from __future__ import annotations

import io
import shutil
import struct
import zlib
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image, PngImagePlugin

from commissary.models import Product, Role
from tests.conftest import Account, Backend, MakeUser
from tests.test_abuse import nginx
from tests.test_catalog import API, make_product, make_restaurant

MiB = 1024 * 1024


def picture(kind: str, size: tuple[int, int] = (24, 12), **save: Any) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, (200, 120, 40)).save(out, kind, **save)
    return out.getvalue()


def jpeg_with_exif() -> bytes:
    exif = Image.Exif()
    exif[0x010F] = "SpyCam"  # Make
    exif[0x0112] = 6  # Orientation: rotate 90° clockwise to view
    exif[0x8825] = {1: "N", 2: (48.0, 51.0, 24.0)}  # GPS position
    return picture("JPEG", exif=exif.tobytes())


def png_with_text() -> bytes:
    info = PngImagePlugin.PngInfo()
    info.add_text("Comment", "taken at 12 Secret Street")
    return picture("PNG", pnginfo=info)


def png_header(width: int, height: int) -> bytes:
    """A PNG that announces ``width`` x ``height`` one-bit pixels and holds none of them."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = zlib.crc32(kind + body)
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IEND", b"")


def media_files(backend: Backend) -> set[str]:
    root = backend.settings.media_dir
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}


@pytest.fixture(autouse=True)
def _empty_media_dir(backend: Backend) -> None:
    """The session's backend keeps its MEDIA_DIR; earlier tests' files are not ours."""
    shutil.rmtree(backend.settings.media_dir, ignore_errors=True)


@pytest.fixture
async def admin(make_user: MakeUser) -> Account:
    return await make_user(Role.ADMIN)


@pytest.fixture
async def owner(make_user: MakeUser) -> Account:
    return await make_user(Role.RESTAURATEUR)


@pytest.fixture
async def product(client: httpx.AsyncClient, admin: Account, owner: Account) -> dict[str, Any]:
    shop = await make_restaurant(client, admin, owner_ids=[owner.user.id])
    return await make_product(client, owner, shop["id"], name="Flat White")


async def upload(
    client: httpx.AsyncClient,
    product_id: int,
    data: bytes,
    headers: dict[str, str],
    filename: str = "photo.jpg",
    content_type: str = "image/jpeg",
) -> httpx.Response:
    return await client.put(
        f"{API}/products/{product_id}/image",
        files={"file": (filename, data, content_type)},
        headers=headers,
    )


async def served_image(client: httpx.AsyncClient, url: str) -> Image.Image:
    response = await client.get(url)
    assert response.status_code == 200, response.text
    image = Image.open(io.BytesIO(response.content))
    image.load()
    return image


async def test_owner_uploads_an_image_served_without_its_metadata(
    client: httpx.AsyncClient, backend: Backend, owner: Account, product: dict[str, Any]
) -> None:
    assert product["image_url"] is None
    before = await client.get(f"{API}/products/{product['id']}")  # cached from now on

    response = await upload(client, product["id"], jpeg_with_exif(), owner.headers)

    assert response.status_code == 200, response.text
    url = response.json()["image_url"]
    assert url.startswith("/media/products/") and url.endswith(".jpg")
    assert before.json()["image_url"] is None
    # The cached product was dropped: every read shows the image now.
    assert (await client.get(f"{API}/products/{product['id']}")).json()["image_url"] == url
    listed = await client.get(f"{API}/products")
    assert [p["image_url"] for p in listed.json()["items"]] == [url]

    image = await served_image(client, url)
    assert image.format == "JPEG"
    assert image.size == (12, 24)  # turned upright as its orientation said
    assert not image.getexif()  # no camera, no GPS position
    assert "exif" not in image.info and "icc_profile" not in image.info
    assert media_files(backend) == {url.removeprefix("/media/")}
    served = await client.get(url)
    assert served.headers["content-type"] == "image/jpeg"
    assert served.headers["x-content-type-options"] == "nosniff"


async def test_png_text_chunks_are_dropped_and_webp_is_kept_as_webp(
    client: httpx.AsyncClient, owner: Account, product: dict[str, Any]
) -> None:
    png = await upload(client, product["id"], png_with_text(), owner.headers, "a.png")
    image = await served_image(client, png.json()["image_url"])
    assert image.format == "PNG" and "Comment" not in image.info

    webp = await upload(client, product["id"], picture("WEBP"), owner.headers, "b.webp")
    assert webp.status_code == 200, webp.text
    assert webp.json()["image_url"].endswith(".webp")
    assert (await served_image(client, webp.json()["image_url"])).format == "WEBP"


async def test_the_type_is_what_the_bytes_decode_as(
    client: httpx.AsyncClient, backend: Backend, owner: Account, product: dict[str, Any]
) -> None:
    # A PNG named and labelled as something else is a PNG.
    disguised = await upload(
        client, product["id"], picture("PNG"), owner.headers, "notes.txt", "text/plain"
    )
    assert disguised.status_code == 200, disguised.text
    assert disguised.json()["image_url"].endswith(".png")
    stored = media_files(backend)

    whole_png = picture("PNG", (64, 64))
    refused = {
        "script": b"<svg onload=alert(1)>",
        "gif": picture("GIF"),
        "truncated": whole_png[: len(whole_png) // 2],
        "header only": b"\x89PNG\r\n\x1a\n" + b"\x00" * 40,
        "empty": b"",
    }
    for label, data in refused.items():
        response = await upload(client, product["id"], data, owner.headers, "x.png", "image/png")
        assert response.status_code == 415, (label, response.text)
        assert response.json()["code"] == "unsupported_image"
    # Nothing was stored and the product kept its image.
    assert media_files(backend) == stored
    read = await client.get(f"{API}/products/{product['id']}")
    assert read.json()["image_url"] == disguised.json()["image_url"]


async def test_too_many_bytes_or_pixels_is_413(
    client: httpx.AsyncClient, backend: Backend, owner: Account, product: dict[str, Any]
) -> None:
    limit = backend.settings.image_max_bytes
    big = b"\x89PNG\r\n\x1a\n" + b"\x00" * limit
    response = await upload(client, product["id"], big, owner.headers)
    assert response.status_code == 413, response.text
    assert response.json()["code"] == "image_too_large"

    # A decompression bomb: a small file announcing more pixels than allowed.
    side = int(backend.settings.image_max_pixels**0.5) + 1
    out = io.BytesIO()
    Image.new("1", (side, side)).save(out, "PNG")
    assert len(out.getvalue()) < MiB
    bomb = await upload(client, product["id"], out.getvalue(), owner.headers)
    assert bomb.status_code == 413, bomb.text
    assert "pixels" in bomb.json()["detail"]
    # One past Pillow's own limit is refused as it opens it, with the same answer.
    huge = await upload(client, product["id"], png_header(30_000, 30_000), owner.headers)
    assert huge.status_code == 413, huge.text
    assert media_files(backend) == set()


async def test_only_the_menus_owner_or_an_admin_changes_the_image(
    client: httpx.AsyncClient, make_user: MakeUser, admin: Account, product: dict[str, Any]
) -> None:
    other = await make_user(Role.RESTAURATEUR)
    customer = await make_user()
    data = picture("PNG")
    assert (await upload(client, product["id"], data, {})).status_code == 401
    assert (await upload(client, product["id"], data, customer.headers)).status_code == 403
    refused = await upload(client, product["id"], data, other.headers)
    assert refused.status_code == 403 and refused.json()["code"] == "not_restaurant_owner"
    assert (await upload(client, 999_999, data, admin.headers)).status_code == 404
    assert (await upload(client, product["id"], data, admin.headers)).status_code == 200
    gone = await client.delete(f"{API}/products/{product['id']}/image", headers=other.headers)
    assert gone.status_code == 403


async def test_replaced_deleted_and_orphaned_files_are_removed_after_commit(
    client: httpx.AsyncClient,
    backend: Backend,
    admin: Account,
    owner: Account,
    product: dict[str, Any],
) -> None:
    first = (await upload(client, product["id"], picture("PNG"), owner.headers)).json()
    second = (await upload(client, product["id"], picture("JPEG"), owner.headers)).json()
    assert media_files(backend) == {second["image_url"].removeprefix("/media/")}
    assert (await client.get(first["image_url"])).status_code == 404

    deleted = await client.delete(f"{API}/products/{product['id']}/image", headers=owner.headers)
    assert deleted.status_code == 204
    assert media_files(backend) == set()
    assert (await client.get(f"{API}/products/{product['id']}")).json()["image_url"] is None
    again = await client.delete(f"{API}/products/{product['id']}/image", headers=owner.headers)
    assert again.status_code == 404 and again.json()["code"] == "image_not_found"

    # Deleting the product, or its whole restaurant, takes the files along.
    await upload(client, product["id"], picture("PNG"), owner.headers)
    assert len(media_files(backend)) == 1
    await client.delete(f"{API}/products/{product['id']}", headers=owner.headers)
    assert media_files(backend) == set()
    extra = await make_product(client, owner, product["restaurant_id"], name="Cortado")
    await upload(client, extra["id"], picture("PNG"), owner.headers)
    assert len(media_files(backend)) == 1
    gone = await client.delete(
        f"{API}/restaurants/{product['restaurant_id']}", headers=admin.headers
    )
    assert gone.status_code == 204, gone.text
    assert media_files(backend) == set()


async def test_a_refused_write_keeps_the_old_file(
    client: httpx.AsyncClient, backend: Backend, owner: Account, product: dict[str, Any]
) -> None:
    kept = (await upload(client, product["id"], picture("PNG"), owner.headers)).json()
    await upload(client, product["id"], b"not an image", owner.headers)
    async with backend.runtime.sessionmaker() as session:
        row = await session.get(Product, product["id"])
        assert row is not None and row.image == kept["image_url"].removeprefix("/media/")
    assert (await client.get(kept["image_url"])).status_code == 200


async def test_nginx_serves_the_uploaded_image_from_media_dir(
    client: httpx.AsyncClient,
    backend: Backend,
    owner: Account,
    product: dict[str, Any],
    tmp_path: Path,
) -> None:
    url = (await upload(client, product["id"], picture("WEBP"), owner.headers)).json()["image_url"]
    from_api = await client.get(url)
    # Nothing listens upstream: whatever nginx answers under /media/ it found on disk.
    with nginx(tmp_path, upstream_port=9, media_root=str(backend.settings.media_dir)) as proxy:
        async with httpx.AsyncClient(base_url=proxy) as http:
            served = await http.get(url)
            missing = await http.get("/media/products/0123456789abcdef.png")
    assert served.status_code == 200
    assert served.content == from_api.content
    assert served.headers["content-type"] == "image/webp"
    assert "immutable" in served.headers["cache-control"]
    assert served.headers["x-content-type-options"] == "nosniff"
    assert missing.status_code == 404  # from disk too: never passed to the API
