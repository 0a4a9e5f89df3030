"""runs: an index on (start_time, id) for the newest-first runs table

Without it, `shipyard runs list` and a search across all experiments sort every run to
show the newest 50: 60-80 ms at 100,000 runs and growing linearly (benchmarks/tracking.py
--scale). With it they read the index backwards and stop after one page.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-05 13:25:00.000000
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.create_index("ix_runs_start", ["start_time", "id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.drop_index("ix_runs_start")
