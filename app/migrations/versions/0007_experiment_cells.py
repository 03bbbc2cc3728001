"""experiment cells

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06 03:00:00

- `experiment.size`: the preset's size it was launched at (default, full; test in the tests).
- `experiment.cells`: for each id in `run_ids`, in the same order, `[arm, seed]` (seed null
  for a run trained once, such as transfer's pretraining run). The verdict protocol pairs the
  arms by seed through it. Rows written before it hold `[]`: their preset had one run per arm
  and no seeds, and they are shown without a verdict.
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("experiment", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "size",
                sqlmodel.sql.sqltypes.AutoString(length=20),
                nullable=False,
                server_default="default",
            )
        )
        batch_op.add_column(sa.Column("cells", sa.JSON(), nullable=False, server_default="[]"))


def downgrade() -> None:
    with op.batch_alter_table("experiment", schema=None) as batch_op:
        batch_op.drop_column("cells")
        batch_op.drop_column("size")
