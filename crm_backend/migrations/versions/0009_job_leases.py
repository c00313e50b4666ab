"""job_leases: one holder at a time for jobs such as the nightly insights recompute

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02 10:00:00

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa
import crm_backend.db  # noqa: F401  (autogenerate renders UTCDateTime from here)


# revision identifiers, used by Alembic.
revision: str = '0009'
down_revision: Union[str, Sequence[str], None] = '0008'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table(
        'job_leases',
        sa.Column('name', sa.String(length=64), nullable=False),
        sa.Column('holder', sa.String(length=200), nullable=True),
        sa.Column('expires_at', crm_backend.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column('last_started_at', crm_backend.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column('last_finished_at', crm_backend.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column('last_failed_at', crm_backend.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column('last_error', sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint('name', name=op.f('pk_job_leases')),
    )


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_table('job_leases')
