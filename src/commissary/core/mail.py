"""Outgoing e-mail over SMTP; with no SMTP server configured the mail goes to the log."""

from __future__ import annotations

import contextlib
import io
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from email.charset import QP, Charset
from email.generator import BytesGenerator
from email.header import Header
from email.message import EmailMessage, Message
from email.policy import compat32
from email.utils import getaddresses, parseaddr

import aiosmtplib
import structlog

from commissary.config import Settings

log = structlog.get_logger(__name__)

Send = Callable[["Mail"], Awaitable[None]]


@dataclass(frozen=True)
class Mail:
    to: str
    subject: str
    text: str


# UTF-8 in quoted-printable, for headers and bodies: 7-bit safe.
_UTF8 = Charset("utf-8")
_UTF8.header_encoding = _UTF8.body_encoding = QP


def _one_line(mail: Mail) -> bool:
    """Whether the headers of ``mail`` hold no line break (which would start a header)."""
    return not any(c in value for value in (mail.to, mail.subject) for c in "\r\n")


class Mailer:
    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        # The envelope's sender: the address of MAIL_FROM (None beyond ASCII).
        sender = parseaddr(settings.mail_from)[1]
        self._sender = sender if sender and settings.mail_from.isascii() else None

    async def send(self, mail: Mail) -> None:
        async with self.connection() as send:
            await send(mail)

    @contextlib.asynccontextmanager
    async def connection(self) -> AsyncIterator[Send]:
        """One SMTP session for several mails (a batch of them costs one connection, one
        handshake); the mail that fails raises, and those before it are sent."""
        s = self._settings
        if not s.smtp_host:
            yield self._log_instead
            return
        client = aiosmtplib.SMTP(
            hostname=s.smtp_host,
            port=s.smtp_port,
            username=s.smtp_user,
            password=s.smtp_password.get_secret_value() if s.smtp_password else None,
            start_tls=s.smtp_starttls,
            timeout=s.smtp_timeout,
        )
        await client.connect()
        try:

            async def send(mail: Mail) -> None:
                if self._sender is not None and mail.to.isascii() and _one_line(mail):
                    recipients = [address for _, address in getaddresses([mail.to])]
                    await client.sendmail(self._sender, recipients, self._flat(mail))
                else:  # the standard library's full treatment (and its refusals)
                    await client.send_message(self._message(mail))
                log.info("mail_sent", to=mail.to, subject=mail.subject)

            yield send
        finally:
            with contextlib.suppress(aiosmtplib.SMTPException, OSError):
                await client.quit()

    def _flat(self, mail: Mail) -> bytes:
        """The mail as sent: UTF-8 text in quoted-printable (any SMTP server takes it), a
        subject beyond ASCII as an encoded word. Built with the ``compat32`` message: the
        default policy's header objects cost a staff mail per order more than sending it."""
        message = Message()
        message["From"] = self._settings.mail_from
        message["To"] = mail.to
        message["Subject"] = (
            mail.subject
            if mail.subject.isascii()
            else Header(mail.subject, _UTF8, header_name="Subject")  # type: ignore[assignment]
        )
        message["MIME-Version"] = "1.0"
        message.set_payload(mail.text, _UTF8)
        out = io.BytesIO()
        BytesGenerator(out, mangle_from_=False, policy=compat32).flatten(message)
        return out.getvalue()

    def _message(self, mail: Mail) -> EmailMessage:
        message = EmailMessage()
        message["From"] = self._settings.mail_from
        message["To"] = mail.to
        message["Subject"] = mail.subject
        message.set_content(mail.text)
        return message

    async def _log_instead(self, mail: Mail) -> None:
        if self._settings.environment == "development":
            # No SMTP in development: the newcomer reads the mail (and its code) here.
            log.warning(f"mail_logged_not_sent\n{mail.text}", to=mail.to, subject=mail.subject)
        else:
            # Elsewhere a mail holds secrets (codes, links): never write its body.
            log.error("mail_dropped_no_smtp_host", to=mail.to, subject=mail.subject)
