"""agents.last_seen_at: when an agent last had the console open

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-23 06:00:00

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa
import crm_backend.db  # noqa: F401  (autogenerate renders UTCDateTime from here)


# revision identifiers, used by Alembic.
revision: str = '0005'
down_revision: Union[str, Sequence[str], None] = '0004'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Upgrade schema."""
    with op.batch_alter_table('agents', schema=None) as batch_op:
        batch_op.add_column(sa.Column('last_seen_at', crm_backend.db.UTCDateTime(timezone=True), nullable=True))



def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table('agents', schema=None) as batch_op:
        batch_op.drop_column('last_seen_at')

