"""per-minute metric series of endpoints and variants

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02
"""

from alembic import op
import sqlalchemy as sa


revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('metric_series',
    sa.Column('endpoint', sa.String(length=128), nullable=False),
    sa.Column('resolution_s', sa.Integer(), nullable=False),
    sa.Column('period_start', sa.DateTime(timezone=True), nullable=False),
    sa.Column('variant', sa.String(length=128), nullable=False),
    sa.Column('worker', sa.String(length=255), nullable=False),
    sa.Column('stats', sa.JSON(), nullable=False),
    sa.PrimaryKeyConstraint('endpoint', 'resolution_s', 'period_start', 'variant', 'worker', name=op.f('pk_metric_series'))
    )
    op.create_index('ix_metric_series_resolution_s_period_start', 'metric_series', ['resolution_s', 'period_start'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_metric_series_resolution_s_period_start', table_name='metric_series')
    op.drop_table('metric_series')
