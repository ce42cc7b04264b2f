"""Outgoing e-mail over SMTP; with no SMTP server configured the mail goes to the log."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from email.message import EmailMessage

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


class Mailer:
    def __init__(self, settings: Settings) -> None:
        self._settings = settings

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
                await client.send_message(self._message(mail))
                log.info("mail_sent", to=mail.to, subject=mail.subject)

            yield send
        finally:
            with contextlib.suppress(aiosmtplib.SMTPException, OSError):
                await client.quit()

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
