"""deployments: guarded deployments of endpoint configs, their steps and their decision log

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-10
"""

from alembic import op
import sqlalchemy as sa


revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('deployments',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('endpoint', sa.String(length=128), nullable=False),
    sa.Column('active_endpoint', sa.String(length=128), nullable=True),
    sa.Column('plan', sa.JSON(), nullable=False),
    sa.Column('source_config', sa.Integer(), nullable=False),
    sa.Column('target', sa.JSON(), nullable=False),
    sa.Column('served_names', sa.JSON(), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('step', sa.Integer(), nullable=False),
    sa.Column('config', sa.Integer(), nullable=True),
    sa.Column('pending', sa.JSON(), nullable=True),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('step_started_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('ended_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_deployments')),
    sa.UniqueConstraint('active_endpoint', name=op.f('uq_deployments_active_endpoint'))
    )
    op.create_index(op.f('ix_deployments_endpoint'), 'deployments', ['endpoint'], unique=False)
    op.create_table('deployment_steps',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('deployment_id', sa.Integer(), nullable=False),
    sa.Column('step', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('percent', sa.Float(), nullable=False),
    sa.Column('config', sa.Integer(), nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('ended_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('outcome', sa.String(length=32), nullable=True),
    sa.ForeignKeyConstraint(['deployment_id'], ['deployments.id'], name=op.f('fk_deployment_steps_deployment_id_deployments'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_deployment_steps')),
    sa.UniqueConstraint('deployment_id', 'step', name=op.f('uq_deployment_steps_deployment_id_step'))
    )
    op.create_table('deployment_decisions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('deployment_id', sa.Integer(), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('step', sa.Integer(), nullable=False),
    sa.Column('action', sa.String(length=16), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('actor', sa.String(length=255), nullable=False),
    sa.Column('window_start', sa.DateTime(timezone=True), nullable=True),
    sa.Column('window_end', sa.DateTime(timezone=True), nullable=True),
    sa.Column('checks', sa.JSON(), nullable=False),
    sa.ForeignKeyConstraint(['deployment_id'], ['deployments.id'], name=op.f('fk_deployment_decisions_deployment_id_deployments'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_deployment_decisions'))
    )
    op.create_index(op.f('ix_deployment_decisions_deployment_id'), 'deployment_decisions', ['deployment_id'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_deployment_decisions_deployment_id'), table_name='deployment_decisions')
    op.drop_table('deployment_decisions')
    op.drop_table('deployment_steps')
    op.drop_index(op.f('ix_deployments_endpoint'), table_name='deployments')
    op.drop_table('deployments')
