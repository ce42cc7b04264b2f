"""The e-mails that tell a customer their order was accepted, rejected or is on its way.

The event stream's hook writes the notifications and, in the same transaction, enqueues one
job, ``notifications.customer_mail``, with the ids of those to mail. The job claims them
under a row lock (``SELECT … FOR UPDATE SKIP LOCKED`` on PostgreSQL; SQLite has one writer
at a time) where ``emailed_at`` is still empty, sends them over one SMTP connection and sets
``emailed_at`` on each mail the server accepted, in the job's transaction. A mail refused by
the server leaves the rest to a new job, delayed with a growing backoff, in that same
transaction: the mails already accepted are marked and never sent again, and a second
delivery of any job finds them marked.
"""

from __future__ import annotations

from collections.abc import Sequence

import structlog
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from commissary.core import jobs
from commissary.core.db import utcnow
from commissary.core.mail import Mail
from commissary.models import Notification, User
from commissary.notifications.rules import EMAILED

log = structlog.get_logger(__name__)

JOB = "notifications.customer_mail"
# Seconds before each new try of the mails an SMTP server refused; the last one repeats.
BACKOFF = (30, 120, 600, 1800, 3600)
MAX_ATTEMPTS = 12  # about half a day of tries; later, the news is stale


def mail_later(session: AsyncSession, notification_ids: Sequence[int]) -> None:
    """Once this transaction commits, mail the notifications ``notification_ids`` (one job)."""
    if notification_ids and jobs.runtime_of(session).settings.notification_mail:
        jobs.enqueue(session, JOB, notification_ids=list(notification_ids))


def compose(notification: Notification, to: str, name: str) -> Mail:
    text = f"Hello {name},\n\n{notification.body}\n\n— Commissary\n"
    # A header never carries a line break, whatever the texts hold.
    return Mail(to=to, subject=" ".join(notification.title.split()), text=text)


async def _claim(
    session: AsyncSession, notification_ids: Sequence[int]
) -> list[tuple[Notification, str, str]]:
    """The notifications of a mailed kind still to mail, locked, with their active member's
    address and name; those another job is mailing right now are skipped (it sends them)."""
    rows = await session.execute(
        select(Notification, User.email, User.full_name)
        .join(User, User.id == Notification.user_id)
        .where(
            Notification.id.in_(notification_ids),
            Notification.emailed_at.is_(None),
            Notification.kind.in_(EMAILED),
            User.is_active.is_(True),
        )
        .order_by(Notification.id)
        .with_for_update(of=Notification, skip_locked=True)
    )
    return [(row[0], row[1], row[2]) for row in rows]


async def send_batch(
    session: AsyncSession, notification_ids: Sequence[int], attempt: int = 0
) -> None:
    """Mail each notification of ``notification_ids`` not mailed yet; see the module's
    docstring for what happens when the SMTP server refuses one."""
    claimed = await _claim(session, notification_ids)
    if not claimed:
        return
    mailer = jobs.runtime_of(session).mailer
    sent = 0
    try:
        async with mailer.connection() as send:
            for notification, email, name in claimed:
                await send(compose(notification, email, name))
                notification.emailed_at = utcnow()
                sent += 1
    except Exception as exc:  # any SMTP or network failure: try the rest later
        _retry_later(session, [n.id for n, _, _ in claimed[sent:]], attempt, exc)
    await session.flush()


def _retry_later(
    session: AsyncSession, notification_ids: list[int], attempt: int, exc: Exception
) -> None:
    if attempt + 1 >= MAX_ATTEMPTS:
        log.error(
            "customer_mail_abandoned",
            notification_ids=notification_ids,
            attempts=attempt + 1,
            error=str(exc),
        )
        return
    delay = BACKOFF[min(attempt, len(BACKOFF) - 1)]
    log.warning(
        "customer_mail_deferred", notification_ids=notification_ids, retry_in=delay, error=str(exc)
    )
    jobs.enqueue(session, JOB, delay=delay, notification_ids=notification_ids, attempt=attempt + 1)
