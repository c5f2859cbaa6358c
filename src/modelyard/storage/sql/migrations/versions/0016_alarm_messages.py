"""alarm history entries have a kind: a state change, or a message sent about the alarm (a
deployment watching it rolled back), kept so that its failed deliveries are tried again

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-06
"""

from alembic import op
import sqlalchemy as sa


revision = '0016'
down_revision = '0015'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('alarm_history') as batch:
        batch.add_column(
            sa.Column('kind', sa.String(32), nullable=False, server_default='state_change')
        )


def downgrade() -> None:
    op.execute("DELETE FROM alarm_history WHERE kind != 'state_change'")
    with op.batch_alter_table('alarm_history') as batch:
        batch.drop_column('kind')
