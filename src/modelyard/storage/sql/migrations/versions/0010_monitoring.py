"""leases, monitor schedules and runs, alarms and their history

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-02
"""

from alembic import op
import sqlalchemy as sa


revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('leases',
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('tick', sa.DateTime(timezone=True), nullable=False),
    sa.Column('holder', sa.String(length=255), nullable=False),
    sa.Column('taken_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('done_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('attempts', sa.Integer(), server_default='1', nullable=False),
    sa.PrimaryKeyConstraint('name', 'tick', name=op.f('pk_leases'))
    )
    op.create_table('monitor_schedules',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=128), nullable=False),
    sa.Column('endpoint', sa.String(length=128), nullable=False),
    sa.Column('every_s', sa.Integer(), nullable=True),
    sa.Column('cron', sa.String(length=128), nullable=True),
    sa.Column('window_s', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_monitor_schedules')),
    sa.UniqueConstraint('name', name=op.f('uq_monitor_schedules_name'))
    )
    op.create_table('monitor_runs',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('schedule', sa.String(length=128), nullable=False),
    sa.Column('endpoint', sa.String(length=128), nullable=False),
    sa.Column('tick', sa.DateTime(timezone=True), nullable=False),
    sa.Column('window_s', sa.Integer(), nullable=False),
    sa.Column('holder', sa.String(length=255), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('reports', sa.JSON(), nullable=False),
    sa.Column('scores', sa.JSON(), nullable=False),
    sa.Column('error', sa.Text(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_monitor_runs')),
    sa.UniqueConstraint('schedule', 'tick', name=op.f('uq_monitor_runs_schedule_tick'))
    )
    op.create_index('ix_monitor_runs_endpoint_tick', 'monitor_runs', ['endpoint', 'tick'], unique=False)
    op.create_table('alarm_rules',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=128), nullable=False),
    sa.Column('endpoint', sa.String(length=128), nullable=False),
    sa.Column('variant', sa.String(length=128), nullable=True),
    sa.Column('metric', sa.String(length=256), nullable=False),
    sa.Column('comparison', sa.String(length=2), nullable=False),
    sa.Column('threshold', sa.Float(), nullable=False),
    sa.Column('datapoints', sa.Integer(), nullable=False),
    sa.Column('windows', sa.Integer(), nullable=False),
    sa.Column('window_s', sa.Integer(), nullable=False),
    sa.Column('statistic', sa.String(length=8), nullable=False),
    sa.Column('missing', sa.String(length=16), server_default='insufficient', nullable=False),
    sa.Column('sinks', sa.JSON(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('state', sa.String(length=24), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('state_since', sa.DateTime(timezone=True), nullable=False),
    sa.Column('evaluated_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_alarm_rules')),
    sa.UniqueConstraint('name', name=op.f('uq_alarm_rules_name'))
    )
    op.create_index(op.f('ix_alarm_rules_endpoint'), 'alarm_rules', ['endpoint'], unique=False)
    op.create_table('alarm_history',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('alarm', sa.String(length=128), nullable=False),
    sa.Column('endpoint', sa.String(length=128), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('old_state', sa.String(length=24), nullable=False),
    sa.Column('new_state', sa.String(length=24), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('windows', sa.JSON(), nullable=False),
    sa.Column('notifications', sa.JSON(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_alarm_history'))
    )
    op.create_index(op.f('ix_alarm_history_alarm'), 'alarm_history', ['alarm'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_alarm_history_alarm'), table_name='alarm_history')
    op.drop_table('alarm_history')
    op.drop_index(op.f('ix_alarm_rules_endpoint'), table_name='alarm_rules')
    op.drop_table('alarm_rules')
    op.drop_index('ix_monitor_runs_endpoint_tick', table_name='monitor_runs')
    op.drop_table('monitor_runs')
    op.drop_table('monitor_schedules')
    op.drop_table('leases')
