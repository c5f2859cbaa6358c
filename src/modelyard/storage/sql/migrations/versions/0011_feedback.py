"""feedback: ground-truth labels, each joined with the captured prediction it labels

One row per (endpoint, inference id, row); a later label for the same key replaces the
earlier one. (This revision was first reserved for baselines too; they are stored elsewhere.)

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-02
"""

from alembic import op
import sqlalchemy as sa


revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('feedback',
    sa.Column('endpoint', sa.String(length=128), nullable=False),
    sa.Column('inference_id', sa.String(length=128), nullable=False),
    sa.Column('row', sa.Integer(), nullable=False),
    sa.Column('label', sa.JSON(), nullable=False),
    sa.Column('variant', sa.String(length=128), nullable=False),
    sa.Column('model', sa.String(length=128), nullable=False),
    sa.Column('model_version', sa.Integer(), nullable=False),
    sa.Column('served_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('prediction', sa.JSON(), nullable=False),
    sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('endpoint', 'inference_id', 'row', name=op.f('pk_feedback'))
    )
    op.create_index('ix_feedback_endpoint_served_at', 'feedback', ['endpoint', 'served_at'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_feedback_endpoint_served_at', table_name='feedback')
    op.drop_table('feedback')
