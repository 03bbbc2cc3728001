"""server-side sessions, case-folded usernames, never-reused user ids, login attempts by address

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-30 09:00:00

- `browser_session`: one row per signed-in browser, keyed by the SHA-256 of the cookie's key.
- `user.username_key`: the case-folded name, unique. Accounts whose names differed only in
  case (possible before this revision) keep working: the oldest keeps its name, each later
  one is renamed `<name>-<id>` (logged here, so an operator can tell its owner).
- `user` is rebuilt on SQLite with AUTOINCREMENT: a deleted row's id is never handed out again.
- `login_attempt` is recreated with the client address (it holds only the last few minutes of
  failed logins; they are dropped).
- Cards that FSRS cannot schedule (a review-state card without a positive stability or with a
  difficulty outside [1, 10], as an unchecked import could store) are reset to new cards;
  undo snapshots that are not card snapshots are cleared. Their reviews are kept.
"""

import json
import logging
from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
import sqlmodel
from alembic import op

import app.models.common

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

logger = logging.getLogger("alembic.runtime.migration")
SNAPSHOT_KEYS = {"state", "step", "stability", "difficulty", "due", "last_review", "reps", "lapses"}


def _is_sqlite() -> bool:
    return op.get_bind().dialect.name == "sqlite"


def _fill_username_keys() -> None:
    bind = op.get_bind()
    user = sa.table("user", sa.column("id"), sa.column("username"), sa.column("username_key"))
    rows = bind.execute(
        sa.select(user.c.id, user.c.username)
        .where(user.c.username.is_not(None))
        .order_by(user.c.id)
    ).all()
    taken = {name.casefold() for _, name in rows}
    seen: set[str] = set()
    for user_id, name in rows:
        key = name.casefold()
        if key in seen:
            renamed = f"{name[:28]}-{user_id}"
            while renamed.casefold() in taken:
                renamed = f"{renamed[:38]}-x"
            logger.warning(
                "user %s: %r differs from an older account only in case; renamed %r",
                user_id,
                name,
                renamed,
            )
            taken.add(renamed.casefold())
            name, key = renamed, renamed.casefold()
        seen.add(key)
        bind.execute(
            user.update().where(user.c.id == user_id).values(username=name, username_key=key)
        )


def _valid_snapshot(text: str) -> bool:
    try:
        data = json.loads(text)
    except ValueError:
        return False
    return isinstance(data, dict) and set(data) >= SNAPSHOT_KEYS


def _repair_practice_data() -> None:
    bind = op.get_bind()
    card = sa.table(
        "card_state",
        sa.column("id"),
        sa.column("state"),
        sa.column("step"),
        sa.column("stability"),
        sa.column("difficulty"),
        sa.column("due", app.models.common.UTCDateTime()),
        sa.column("last_review"),
        sa.column("reps"),
        sa.column("lapses"),
    )
    reviewed = card.c.state.in_([2, 3])
    unusable = sa.or_(
        card.c.state.not_in([1, 2, 3]),
        sa.and_(card.c.state.in_([1, 3]), card.c.step.is_(None)),
        sa.and_(
            reviewed,
            sa.or_(
                card.c.stability.is_(None),
                card.c.stability <= 0,
                card.c.difficulty.is_(None),
                card.c.difficulty < 1,
                card.c.difficulty > 10,
            ),
        ),
    )
    bind.execute(
        card.update()
        .where(unusable)
        .values(
            state=1,
            step=0,
            stability=None,
            difficulty=None,
            last_review=None,
            reps=0,
            lapses=0,
            due=datetime.now(UTC),
        )
    )
    log = sa.table("review_log", sa.column("id"), sa.column("card_before"))
    rows = bind.execute(
        sa.select(log.c.id, log.c.card_before).where(log.c.card_before.is_not(None))
    )
    broken = [review_id for review_id, text in rows if not _valid_snapshot(text)]
    for start in range(0, len(broken), 500):
        chunk = broken[start : start + 500]
        bind.execute(log.update().where(log.c.id.in_(chunk)).values(card_before=None))


def upgrade() -> None:
    op.create_table(
        "browser_session",
        sa.Column("key_hash", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("created_at", app.models.common.UTCDateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", app.models.common.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["user.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("key_hash"),
    )
    with op.batch_alter_table("browser_session", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_browser_session_last_seen_at"), ["last_seen_at"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_browser_session_user_id"), ["user_id"], unique=False)

    # On SQLite the copy is made even for one new column, so the new table gets AUTOINCREMENT.
    with op.batch_alter_table(
        "user",
        schema=None,
        recreate="always" if _is_sqlite() else "auto",
        table_kwargs={"sqlite_autoincrement": True},
    ) as batch_op:
        batch_op.add_column(
            sa.Column("username_key", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=True)
        )
    _fill_username_keys()
    with op.batch_alter_table("user", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_user_username_key"), ["username_key"], unique=True)

    with op.batch_alter_table("login_attempt", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_login_attempt_username"))
        batch_op.drop_index(batch_op.f("ix_login_attempt_attempted_at"))
    op.drop_table("login_attempt")
    op.create_table(
        "login_attempt",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("username_key", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("address", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("attempted_at", app.models.common.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("login_attempt", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_login_attempt_address"), ["address"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_login_attempt_attempted_at"), ["attempted_at"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_login_attempt_username_key"), ["username_key"], unique=False
        )

    _repair_practice_data()


def downgrade() -> None:
    with op.batch_alter_table("login_attempt", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_login_attempt_username_key"))
        batch_op.drop_index(batch_op.f("ix_login_attempt_attempted_at"))
        batch_op.drop_index(batch_op.f("ix_login_attempt_address"))
    op.drop_table("login_attempt")
    op.create_table(
        "login_attempt",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("username", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("attempted_at", app.models.common.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("login_attempt", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_login_attempt_attempted_at"), ["attempted_at"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_login_attempt_username"), ["username"], unique=False)

    with op.batch_alter_table("user", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_user_username_key"))
        batch_op.drop_column("username_key")

    with op.batch_alter_table("browser_session", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_browser_session_user_id"))
        batch_op.drop_index(batch_op.f("ix_browser_session_last_seen_at"))
    op.drop_table("browser_session")
