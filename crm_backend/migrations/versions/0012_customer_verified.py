"""handoffs.customer_verified, tickets.customer_verified: whether the chat proved the customer's address

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-07 10:00:00

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision: str = '0012'
down_revision: Union[str, Sequence[str], None] = '0011'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Upgrade schema."""
    # Existing rows were never proved: false, so the console warns about them.
    with op.batch_alter_table('handoffs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('customer_verified', sa.Boolean(), server_default=sa.false(), nullable=False))
    with op.batch_alter_table('tickets', schema=None) as batch_op:
        batch_op.add_column(sa.Column('customer_verified', sa.Boolean(), server_default=sa.false(), nullable=False))


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table('tickets', schema=None) as batch_op:
        batch_op.drop_column('customer_verified')
    with op.batch_alter_table('handoffs', schema=None) as batch_op:
        batch_op.drop_column('customer_verified')
