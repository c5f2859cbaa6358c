"""tuning: trial jobs point at their tuning job; a job keeps the model it staged

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23
"""

from alembic import op
import sqlalchemy as sa


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('jobs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('parent', sa.String(length=160), nullable=True))
        batch_op.add_column(sa.Column('artifact', sa.JSON(), nullable=True))
        batch_op.create_index(batch_op.f('ix_jobs_parent'), ['parent'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('jobs', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_jobs_parent'))
        batch_op.drop_column('artifact')
        batch_op.drop_column('parent')
