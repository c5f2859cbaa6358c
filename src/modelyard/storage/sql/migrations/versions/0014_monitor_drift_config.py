"""monitor schedules keep the drift thresholds their runs use

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-11
"""

from alembic import op
import sqlalchemy as sa


revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('monitor_schedules') as batch:
        batch.add_column(sa.Column('drift_config', sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('monitor_schedules') as batch:
        batch.drop_column('drift_config')
