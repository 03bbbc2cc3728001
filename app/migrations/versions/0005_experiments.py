"""experiments

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-30 20:30:00

- `experiment`: one row per group of runs launched from a preset (app.experiments.presets):
  the owner, the preset's name and the runs' ids in the preset's order (a JSON list; the runs
  are ordinary `run` rows). AUTOINCREMENT on SQLite, like `run`. An experiment goes with its
  user (ON DELETE CASCADE); a guest merged into an account hands them over.
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import app.models.common

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "experiment",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("owner_id", sa.Integer(), nullable=False),
        sa.Column("preset", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("run_ids", sa.JSON(), nullable=False),
        sa.Column("created_at", app.models.common.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["owner_id"], ["user.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sqlite_autoincrement=True,
    )
    with op.batch_alter_table("experiment", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_experiment_owner_id"), ["owner_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_experiment_preset"), ["preset"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("experiment", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_experiment_preset"))
        batch_op.drop_index(batch_op.f("ix_experiment_owner_id"))
    op.drop_table("experiment")
