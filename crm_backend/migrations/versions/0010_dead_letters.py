"""dead_letters: what a long-running worker could not handle and set aside

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-06 12:00:00

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa
import crm_backend.db  # noqa: F401  (autogenerate renders UTCDateTime from here)


# revision identifiers, used by Alembic.
revision: str = '0010'
down_revision: Union[str, Sequence[str], None] = '0009'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table(
        'dead_letters',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('source', sa.String(length=32), nullable=False),
        sa.Column('position', sa.String(length=128), nullable=False),
        sa.Column('error', sa.String(length=500), nullable=False),
        sa.Column('excerpt', sa.Text(), nullable=False),
        sa.Column('created_at', crm_backend.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_dead_letters')),
        sa.UniqueConstraint('source', 'position', name='uq_dead_letters_source_position'),
    )
    op.create_index(op.f('ix_dead_letters_created_at'), 'dead_letters', ['created_at'], unique=False)


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_index(op.f('ix_dead_letters_created_at'), table_name='dead_letters')
    op.drop_table('dead_letters')
