"""the order in which a multiple-choice item's options were shown, per review

Revision ID: 0004
Revises: 0002
Create Date: 2026-11-30 12:00:00

- `review_log.choice_order`: the options' indices (as in the question file) in the order they
  were shown, e.g. "2,0,3,1". Options are shuffled per attempt from its seed; earlier reviews
  were shown in the file's order and keep NULL, which means exactly that.
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("review_log", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("choice_order", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table("review_log", schema=None) as batch_op:
        batch_op.drop_column("choice_order")
