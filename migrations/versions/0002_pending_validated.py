"""pending_authorizations.validated: what /authorize established on arrival

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-07 23:30:00

A request parked before this revision has no ``validated`` value and is read as expired
(pending requests live minutes; the app starts the sign-in again).
"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('pending_authorizations', schema=None) as batch_op:
        batch_op.add_column(sa.Column('validated', sa.JSON(), nullable=True))


def downgrade():
    with op.batch_alter_table('pending_authorizations', schema=None) as batch_op:
        batch_op.drop_column('validated')
