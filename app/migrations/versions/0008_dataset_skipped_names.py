"""skipped files named

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-08 10:00:00

- `dataset.skipped_names`: `{reason: [path inside the zip]}`, the first skipped files of an
  upload by name (at most 50 in all), so the data set page can say which file did not count,
  not only how many. Rows written before it hold `{}`: their page shows the counts alone.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("dataset", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("skipped_names", sa.JSON(), nullable=False, server_default="{}")
        )


def downgrade() -> None:
    with op.batch_alter_table("dataset", schema=None) as batch_op:
        batch_op.drop_column("skipped_names")
