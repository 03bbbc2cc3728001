"""Users, guests, login attempts, and moving a guest's progress into an account."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session, col, delete, func, select, text, update

from app.models import CardState, Dataset, Draft, Experiment, LoginAttempt, ReviewLog, Run, User
from app.practice.scheduling import detach_snapshot


def get_user(session: Session, *, user_id: int) -> User | None:
    return session.get(User, user_id)


def find_by_username_key(session: Session, *, username_key: str) -> User | None:
    """The account whose case-folded name is `username_key`."""
    return session.exec(select(User).where(User.username_key == username_key)).first()


def create_guest(session: Session) -> User:
    user = User()
    session.add(user)
    session.flush()
    return user


def register(
    session: Session, *, user: User, username: str, username_key: str, password_hash: str
) -> User:
    """Turn `user` (a guest, with whatever progress it has) into a named account.

    Flushes, so a name taken meanwhile raises IntegrityError here (the caller rolls back).
    """
    user.username = username
    user.username_key = username_key
    user.password_hash = password_hash
    session.add(user)
    session.flush()
    return user


# --- login attempts --------------------------------------------------------------------------


def start_login_attempt(session: Session, *, username_key: str, address: str, now: datetime) -> int:
    """Record a login try before its password is checked; returns the row id (caller commits)."""
    attempt = LoginAttempt(username_key=username_key, address=address[:64], attempted_at=now)
    session.add(attempt)
    session.flush()
    assert attempt.id is not None
    return attempt.id


def lock_login_counters(session: Session, *, username_key: str, address: str) -> None:
    """Serialise login tries for this name and this address until the transaction ends.

    On PostgreSQL two transaction-scoped advisory locks (names in class 1, addresses in class
    2, always taken in that order, so two tries cannot wait on each other in a cycle); on
    SQLite a write transaction already runs alone. Counting under the lock makes the limit
    exact: the n-th concurrent try sees the n − 1 before it, however the requests interleave.
    """
    if session.get_bind().dialect.name != "postgresql":
        return
    for class_id, key in ((1, username_key), (2, address[:64])):
        session.connection().execute(
            text("SELECT pg_advisory_xact_lock(:class_id, hashtext(:key))"),
            {"class_id": class_id, "key": key},
        )


def count_login_attempts(
    session: Session, *, username_key: str, address: str, since: datetime
) -> tuple[int, int]:
    """(tries for this name, tries from this address) at or after `since`, all committed ones."""
    recent = col(LoginAttempt.attempted_at) >= since
    by_name = session.exec(
        select(func.count()).where(LoginAttempt.username_key == username_key, recent)
    ).one()
    by_address = session.exec(
        select(func.count()).where(LoginAttempt.address == address[:64], recent)
    ).one()
    return by_name, by_address


def forget_login_attempt(session: Session, *, attempt_id: int) -> None:
    session.exec(delete(LoginAttempt).where(col(LoginAttempt.id) == attempt_id))


def clear_failed_logins(session: Session, *, username_key: str) -> None:
    session.exec(delete(LoginAttempt).where(col(LoginAttempt.username_key) == username_key))


def delete_old_login_attempts(session: Session, *, before: datetime) -> None:
    session.exec(delete(LoginAttempt).where(col(LoginAttempt.attempted_at) < before))


# --- guest → account -------------------------------------------------------------------------


def merge_guest(session: Session, *, guest: User, account: User, work: bool = True) -> None:
    """Move a guest's reviews into `account`, and cards and drafts the account lacks; with
    `work`, its training runs, experiments and uploaded data sets too.

    Without `work` the guest keeps those (and its row); its sessions are ended by the caller.

    A moved review of an item whose card stays the account's own gets a detached undo
    snapshot: undoing it removes the review and leaves the account's card as it is (restoring
    the guest's card over it would be wrong). The guest row is deleted with its sessions.
    """
    assert guest.id is not None and account.id is not None
    owned_items = set(
        session.exec(select(CardState.item_id).where(CardState.user_id == account.id)).all()
    )
    session.exec(
        update(CardState)
        .where(col(CardState.user_id) == guest.id, col(CardState.item_id).not_in(owned_items))
        .values(user_id=account.id)
    )
    owned_drafts = select(Draft.question_slug).where(Draft.user_id == account.id)
    session.exec(
        update(Draft)
        .where(col(Draft.user_id) == guest.id, col(Draft.question_slug).not_in(owned_drafts))
        .values(user_id=account.id)
    )
    foreign = session.exec(
        select(ReviewLog).where(
            ReviewLog.user_id == guest.id,
            col(ReviewLog.item_id).in_(owned_items),
            col(ReviewLog.card_before).is_not(None),
        )
    ).all()
    for review in foreign:
        assert review.card_before is not None
        review.card_before = detach_snapshot(review.card_before)
        session.add(review)
    session.flush()
    # Idempotency keys are per user; a guest key that collides is dropped, the review kept.
    owned_keys = select(ReviewLog.idempotency_key).where(
        ReviewLog.user_id == account.id, col(ReviewLog.idempotency_key).is_not(None)
    )
    session.exec(
        update(ReviewLog)
        .where(col(ReviewLog.user_id) == guest.id, col(ReviewLog.idempotency_key).in_(owned_keys))
        .values(idempotency_key=None)
    )
    session.exec(
        update(ReviewLog).where(col(ReviewLog.user_id) == guest.id).values(user_id=account.id)
    )
    if not work:
        session.flush()
        return
    session.exec(update(Run).where(col(Run.owner_id) == guest.id).values(owner_id=account.id))
    session.exec(
        update(Experiment).where(col(Experiment.owner_id) == guest.id).values(owner_id=account.id)
    )
    session.exec(
        update(Dataset).where(col(Dataset.owner_id) == guest.id).values(owner_id=account.id)
    )
    session.delete(guest)
    session.flush()
