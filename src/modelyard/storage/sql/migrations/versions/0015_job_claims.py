"""a job can hold a claim (a batch job's output) that no other active job holds

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-06
"""

from alembic import op
import sqlalchemy as sa


revision = '0015'
down_revision = '0014'
branch_labels = None
depends_on = None

_HOLDING = sa.text("claim IS NOT NULL AND status IN ('Pending', 'InProgress', 'Stopping')")


def upgrade() -> None:
    with op.batch_alter_table('jobs') as batch:
        batch.add_column(sa.Column('claim', sa.String(64), nullable=True))
    op.create_index(
        'ix_jobs_active_claim',
        'jobs',
        ['claim'],
        unique=True,
        sqlite_where=_HOLDING,
        postgresql_where=_HOLDING,
    )


def downgrade() -> None:
    op.drop_index('ix_jobs_active_claim', table_name='jobs')
    with op.batch_alter_table('jobs') as batch:
        batch.drop_column('claim')
