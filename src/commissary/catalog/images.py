"""Product images: recognised by their bytes, decoded to prove it, re-encoded without
metadata, and stored under a random name in ``MEDIA_DIR``.

The type is what the bytes decode as, never the upload's name or Content-Type. Decoding is
CPU work, so callers run :func:`reencode` in a thread. The pixel count is read from the
header and checked before anything is decoded, so a small file that would inflate into
gigabytes (a decompression bomb) is refused without being unpacked.
"""

from __future__ import annotations

import contextlib
import io
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageOps, UnidentifiedImageError
from starlette.staticfiles import StaticFiles

from commissary.config import Settings
from commissary.core.errors import DomainError

MEDIA_PATH = "/media"
FOLDER = "products"
EXTENSIONS = {"JPEG": "jpg", "PNG": "png", "WEBP": "webp"}


class ImageTooLarge(DomainError):
    status, code = 413, "image_too_large"


class UnsupportedImage(DomainError):
    status, code = 415, "unsupported_image"


@dataclass(frozen=True, slots=True)
class Encoded:
    data: bytes
    extension: str


def sniff(data: bytes) -> str | None:
    """The format the bytes announce: ``JPEG``, ``PNG`` or ``WEBP``; None for anything else."""
    if data.startswith(b"\xff\xd8\xff"):
        return "JPEG"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "PNG"
    if data.startswith(b"RIFF") and data[8:12] == b"WEBP":
        return "WEBP"
    return None


def reencode(data: bytes, max_pixels: int) -> Encoded:
    """Decode ``data`` and write it again in its own format, without EXIF, XMP, ICC or text
    chunks, turned upright as its EXIF orientation said. 415 unless it is a whole JPEG, PNG
    or WebP image; 413 when it has more than ``max_pixels`` pixels. Blocking: run in a thread."""
    kind = sniff(data)
    if kind is None:
        raise UnsupportedImage("the file is not a JPEG, PNG or WebP image")
    try:
        with Image.open(io.BytesIO(data), formats=[kind]) as image:
            width, height = image.size
            if width * height > max_pixels:
                raise ImageTooLarge(
                    f"the image has {width}x{height} pixels; at most {max_pixels} are accepted"
                )
            image.load()
            upright = ImageOps.exif_transpose(image)
            return Encoded(_save(upright, kind), EXTENSIONS[kind])
    except Image.DecompressionBombError:  # Pillow's own limit, checked when it reads the header
        raise ImageTooLarge(f"the image has more than {max_pixels} pixels") from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError):
        raise UnsupportedImage(f"the file is not a complete, readable {kind} image") from None


def _save(image: Image.Image, kind: str) -> bytes:
    image.info = {}  # some encoders copy EXIF, ICC profiles or text from it when present
    out = io.BytesIO()
    if kind == "JPEG":
        if image.mode not in ("RGB", "L", "CMYK"):
            image = image.convert("RGB")
        image.save(out, "JPEG", quality=85, optimize=True)
    elif kind == "PNG":
        image.save(out, "PNG", optimize=True)
    else:
        if image.mode not in ("RGB", "RGBA"):
            image = image.convert("RGBA" if "A" in image.getbands() else "RGB")
        image.save(out, "WEBP", quality=85)
    return out.getvalue()


def store(media_dir: Path, encoded: Encoded) -> str:
    """Write the image under a new random name; the name relative to ``media_dir``.
    Written to a temporary file and renamed, so a reader never sees half an image."""
    folder = media_dir / FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    name = f"{FOLDER}/{secrets.token_hex(16)}.{encoded.extension}"
    partial = media_dir / f"{name}.partial"
    partial.write_bytes(encoded.data)
    os.replace(partial, media_dir / name)
    return name


def remove(media_dir: Path, name: str | None) -> None:
    """Delete a stored image; one already gone is fine."""
    if name is not None:
        with contextlib.suppress(FileNotFoundError):
            (media_dir / name).unlink()


def url(name: str) -> str:
    """Where a stored image is served: by the API, and by the reverse proxy in production."""
    return f"{MEDIA_PATH}/{name}"


class MediaFiles(StaticFiles):
    """``MEDIA_DIR`` served as it is; a folder not created yet (no upload so far) is empty."""

    async def check_config(self) -> None:
        return None


def media_files(settings: Settings) -> StaticFiles:
    """The ASGI app serving ``MEDIA_DIR`` at ``/media``."""
    return MediaFiles(directory=settings.media_dir, check_dir=False)
