"""Request body size limits, enforced while the body streams in.

A declared ``Content-Length`` over the limit is refused before a byte is read; a chunked body
is counted as it arrives and cut off as soon as it passes the limit, so a huge body never
reaches memory. Multipart uploads have their own, larger limit."""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from commissary.core.errors import problem


def _header(scope: Scope, name: bytes) -> bytes | None:
    return next((value for key, value in scope["headers"] if key == name), None)


def _declared_length(scope: Scope) -> int | None:
    raw = _header(scope, b"content-length")
    return int(raw) if raw is not None and raw.strip().isdigit() else None


class BodySizeLimitMiddleware:
    """Answers 413 problem details to a body over ``max_json_bytes`` (any body but a
    multipart one) or ``max_upload_bytes`` (``multipart/form-data``)."""

    def __init__(self, app: ASGIApp, *, max_json_bytes: int, max_upload_bytes: int) -> None:
        self.app = app
        self.max_json_bytes = max_json_bytes
        self.max_upload_bytes = max_upload_bytes

    def _limit(self, scope: Scope) -> tuple[int, str]:
        content_type = (_header(scope, b"content-type") or b"").lower()
        if content_type.startswith(b"multipart/"):
            return self.max_upload_bytes, "upload"
        return self.max_json_bytes, "request body"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit, what = self._limit(scope)

        async def too_large(scope: Scope, receive: Receive, send: Send) -> None:
            # Built only when needed: most requests never get here.
            answer = problem(
                413,
                "body_too_large",
                f"The {what} is larger than the limit of {limit} bytes.",
                instance=scope.get("path"),
                headers={"Connection": "close"},
            )
            await answer(scope, receive, send)

        declared = _declared_length(scope)
        if declared is not None and declared > limit:
            await too_large(scope, receive, send)
            return

        received, exceeded, started = 0, False, False

        async def counting_receive() -> Message:
            nonlocal received, exceeded
            if exceeded:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    # The app sees the client gone and stops reading; nothing more is buffered.
                    exceeded = True
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if exceeded and not started:
                return  # the app's answer to a cut-off body is replaced by the 413 below
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counting_receive, guarded_send)
        except Exception:
            # An app that fails on the cut-off body has failed because of it: answer 413.
            if not exceeded or started:
                raise
        if exceeded and not started:
            await too_large(scope, receive, send)
