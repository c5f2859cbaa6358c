"""endpoints and configs

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23
"""

from alembic import op
import sqlalchemy as sa


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('deployment_state',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('revision', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_deployment_state'))
    )
    op.execute("INSERT INTO deployment_state (id, revision) VALUES (1, 0)")
    op.create_table('endpoints',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=128), nullable=False),
    sa.Column('last_config', sa.Integer(), server_default='0', nullable=False),
    sa.Column('current_config', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_endpoints')),
    sa.UniqueConstraint('name', name=op.f('uq_endpoints_name'))
    )
    op.create_table('endpoint_configs',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('endpoint_id', sa.Integer(), nullable=False),
    sa.Column('number', sa.Integer(), nullable=False),
    sa.Column('parent', sa.Integer(), nullable=True),
    sa.Column('change', sa.String(length=16), nullable=False),
    sa.Column('variants', sa.JSON(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['endpoint_id'], ['endpoints.id'], name=op.f('fk_endpoint_configs_endpoint_id_endpoints'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_endpoint_configs')),
    sa.UniqueConstraint('endpoint_id', 'number', name=op.f('uq_endpoint_configs_endpoint_id_number'))
    )
    op.create_table('serving_versions',
    sa.Column('endpoint_id', sa.Integer(), nullable=False),
    sa.Column('variant', sa.String(length=128), nullable=False),
    sa.Column('version_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['endpoint_id'], ['endpoints.id'], name=op.f('fk_serving_versions_endpoint_id_endpoints'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['version_id'], ['model_versions.id'], name=op.f('fk_serving_versions_version_id_model_versions'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('endpoint_id', 'variant', name=op.f('pk_serving_versions'))
    )
    with op.batch_alter_table('serving_versions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_serving_versions_version_id'), ['version_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('serving_versions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_serving_versions_version_id'))

    op.drop_table('serving_versions')
    op.drop_table('endpoint_configs')
    op.drop_table('endpoints')
    op.drop_table('deployment_state')
