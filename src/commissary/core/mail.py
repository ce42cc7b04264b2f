"""Outgoing e-mail over SMTP; with no SMTP server configured the mail goes to the log."""

from __future__ import annotations

from dataclasses import dataclass
from email.message import EmailMessage

import aiosmtplib
import structlog

from commissary.config import Settings

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class Mail:
    to: str
    subject: str
    text: str


class Mailer:
    def __init__(self, settings: Settings) -> None:
        self._settings = settings

    async def send(self, mail: Mail) -> None:
        s = self._settings
        if not s.smtp_host:
            if s.environment == "development":
                # No SMTP in development: the newcomer reads the mail (and its code) here.
                log.warning(f"mail_logged_not_sent\n{mail.text}", to=mail.to, subject=mail.subject)
            else:
                # Elsewhere a mail holds secrets (codes, links): never write its body.
                log.error("mail_dropped_no_smtp_host", to=mail.to, subject=mail.subject)
            return
        message = EmailMessage()
        message["From"] = s.mail_from
        message["To"] = mail.to
        message["Subject"] = mail.subject
        message.set_content(mail.text)
        await aiosmtplib.send(
            message,
            hostname=s.smtp_host,
            port=s.smtp_port,
            username=s.smtp_user,
            password=s.smtp_password.get_secret_value() if s.smtp_password else None,
            start_tls=s.smtp_starttls,
            timeout=s.smtp_timeout,
        )
        log.info("mail_sent", to=mail.to, subject=mail.subject)
