"""What the SMTP server receives from ``core.mail.Mailer``: every recipient, the subject and
the text as written (beyond ASCII too), and no header a value could forge."""

from __future__ import annotations

from email import message_from_bytes, policy
from email.message import EmailMessage

import pytest

from commissary.core.mail import Mail, Mailer
from tests.conftest import Backend
from tests.servers import Mailbox


def _parsed(mailbox: Mailbox) -> list[EmailMessage]:
    parsed = []
    for message in mailbox.messages:
        again = message_from_bytes(message.as_bytes(), policy=policy.default)
        assert isinstance(again, EmailMessage)
        parsed.append(again)
    return parsed


async def test_a_mail_arrives_to_every_recipient_with_its_subject_and_text(
    backend: Backend, mailbox: Mailbox
) -> None:
    text = "Café Ünïcode accepted order #5 for Zoë.\n\n  1 x Crème brûlée @ 4.50 = 4.50\n" + (
        "A line long enough to be folded by a careless encoder, " * 3 + "\n"
    )
    subject = "New order #5 at Café Ü: 4.50 EUR, a subject long enough to need folding " * 2
    async with Mailer(backend.settings).connection() as send:
        await send(Mail("owner@example.com, admin@example.com", subject.strip(), text))
        await send(Mail("one@example.com", "Plain ASCII = fine", "Total = 9.00\n.\n"))
    first, second = _parsed(mailbox)
    assert first["Subject"] == subject.strip()
    assert first.get_content() == text
    assert {a.addr_spec for a in first["To"].addresses} == {
        "owner@example.com",
        "admin@example.com",
    }
    assert first["From"] == backend.settings.mail_from
    assert (second["Subject"], second.get_content()) == ("Plain ASCII = fine", "Total = 9.00\n.\n")


@pytest.mark.parametrize(
    "mail",
    [
        Mail("a@example.com", "Hello\r\nBcc: victim@example.com", "text"),
        Mail("a@example.com\nBcc: victim@example.com", "Hello", "text"),
    ],
)
async def test_a_line_break_in_a_header_sends_nothing(
    backend: Backend, mailbox: Mailbox, mail: Mail
) -> None:
    with pytest.raises(ValueError, match="linefeed or carriage return"):
        await Mailer(backend.settings).send(mail)
    assert mailbox.messages == []
