"""tickets.priority_source: automatic (decided from the customer's figures) or manual

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02 09:30:00

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision: str = '0008'
down_revision: Union[str, Sequence[str], None] = '0007'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Upgrade schema."""
    with op.batch_alter_table('tickets', schema=None) as batch_op:
        batch_op.add_column(sa.Column('priority_source', sa.String(length=16), server_default='manual', nullable=False))
        batch_op.create_check_constraint(batch_op.f('ck_tickets_priority_source'), sa.text("priority_source IN ('automatic', 'manual')"))
    # Only a raised priority kept its reason, so only those are known to be
    # automatic; the others stay "manual" and are never decided again.
    op.execute("UPDATE tickets SET priority_source = 'automatic' WHERE priority_reason IS NOT NULL")


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table('tickets', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('ck_tickets_priority_source'), type_='check')
        batch_op.drop_column('priority_source')
