"""training runs

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-30 17:32:16

- `run`: one row per training run (config, status, progress, heartbeat, the worker holding
  it, attempts, the cancel flag, the latest metrics and the per-epoch history). AUTOINCREMENT
  on SQLite, so a deleted run's id, which names its folder under DATA_DIR/runs/, is never
  handed out again. `(status, id)` is indexed: workers claim the oldest queued run.
- A user's runs go with the user (ON DELETE CASCADE); a guest merged into an account hands
  them over first (app.repos.users.merge_guest).
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import app.models.common

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "run",
        sa.Column("config", sa.JSON(), nullable=False),
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("owner_id", sa.Integer(), nullable=False),
        sa.Column("status", sqlmodel.sql.sqltypes.AutoString(length=12), nullable=False),
        sa.Column("epoch", sa.Integer(), nullable=False),
        sa.Column("epochs", sa.Integer(), nullable=False),
        sa.Column("step", sa.Integer(), nullable=False),
        sa.Column("steps", sa.Integer(), nullable=False),
        sa.Column("loss", sa.Float(), nullable=True),
        sa.Column("images_per_s", sa.Float(), nullable=True),
        sa.Column("eta_s", sa.Float(), nullable=True),
        sa.Column("curve", sa.JSON(), nullable=False),
        sa.Column("history", sa.JSON(), nullable=False),
        sa.Column("metrics", sa.JSON(), nullable=True),
        sa.Column("info", sa.JSON(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("created_at", app.models.common.UTCDateTime(timezone=True), nullable=False),
        sa.Column("started_at", app.models.common.UTCDateTime(timezone=True), nullable=True),
        sa.Column("finished_at", app.models.common.UTCDateTime(timezone=True), nullable=True),
        sa.Column("heartbeat_at", app.models.common.UTCDateTime(timezone=True), nullable=True),
        sa.Column("worker_id", sqlmodel.sql.sqltypes.AutoString(length=120), nullable=True),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("cancel_requested", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(["owner_id"], ["user.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sqlite_autoincrement=True,
    )
    with op.batch_alter_table("run", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_run_owner_id"), ["owner_id"], unique=False)
        batch_op.create_index("ix_run_status_id", ["status", "id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("run", schema=None) as batch_op:
        batch_op.drop_index("ix_run_status_id")
        batch_op.drop_index(batch_op.f("ix_run_owner_id"))
    op.drop_table("run")
