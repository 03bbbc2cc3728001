"""uploaded data sets

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-30 20:30:00

- `dataset`: one row per ImageFolder a user uploaded as a zip: its name, its folder under
  DATA_DIR/datasets, the usable images per class, what was skipped and why, and the bytes it
  keeps on disk (the per-user quota counts them). AUTOINCREMENT on SQLite, so a deleted data
  set's id, which names its folder, is never handed out again. Goes with its user (ON DELETE
  CASCADE); a guest merged into an account hands them over.
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import app.models.common

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "dataset",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("owner_id", sa.Integer(), nullable=False),
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(length=80), nullable=False),
        sa.Column("folder", sqlmodel.sql.sqltypes.AutoString(length=120), nullable=False),
        sa.Column("created_at", app.models.common.UTCDateTime(timezone=True), nullable=False),
        sa.Column("classes", sa.JSON(), nullable=False),
        sa.Column("images", sa.Integer(), nullable=False),
        sa.Column("skipped", sa.JSON(), nullable=False),
        sa.Column("disk_bytes", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["owner_id"], ["user.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sqlite_autoincrement=True,
    )
    with op.batch_alter_table("dataset", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_dataset_owner_id"), ["owner_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("dataset", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_dataset_owner_id"))
    op.drop_table("dataset")
