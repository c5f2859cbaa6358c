"""endpoint capture settings (sampling percent, redacted fields)

A variant's capture settings (percent, redacted fields) live in its config's ``variants`` JSON,
like its batching and predictor, so they need no column. What is new is the per-endpoint
secret that hashes redacted fields: ``endpoints.capture_salt``, given here to every existing
endpoint (new endpoints get theirs when they are inserted).

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02
"""

import secrets

from alembic import op
import sqlalchemy as sa


revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('endpoints', sa.Column('capture_salt', sa.String(length=64), nullable=True))
    conn = op.get_bind()
    endpoints = sa.table('endpoints', sa.column('id', sa.Integer), sa.column('capture_salt'))
    for (endpoint_id,) in conn.execute(sa.select(endpoints.c.id)).all():
        conn.execute(
            endpoints.update()
            .where(endpoints.c.id == endpoint_id)
            .values(capture_salt=secrets.token_hex(16))
        )


def downgrade() -> None:
    # A plain ALTER TABLE … DROP COLUMN (SQLite >= 3.35): batch mode would copy and drop the
    # endpoints table, which its configs reference (ON DELETE CASCADE).
    op.drop_column('endpoints', 'capture_salt')
