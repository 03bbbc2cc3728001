"""Users, guests, and moving a guest's progress into an account (login attempts:
app.repos.login_attempts)."""

from __future__ import annotations

from sqlmodel import Session, col, select, update

from app.models import CardState, Dataset, Draft, Experiment, ReviewLog, Run, User
from app.practice.scheduling import detach_snapshot


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
