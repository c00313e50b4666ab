"""customer insights: value, loyalty, churn risk, segment; insight models; conversations; ticket priority reason; created_at indexes for the dashboard

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-23 07:45:00

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa
import crm_backend.db  # noqa: F401  (autogenerate renders UTCDateTime from here)


# revision identifiers, used by Alembic.
revision: str = '0006'
down_revision: Union[str, Sequence[str], None] = '0005'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Upgrade schema."""
    with op.batch_alter_table('customers', schema=None) as batch_op:
        batch_op.add_column(sa.Column('lifetime_value', sa.Numeric(precision=15, scale=2), nullable=True))
        batch_op.add_column(sa.Column('loyalty_score', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('loyalty_tier', sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column('churn_risk', sa.Float(), nullable=True))
        batch_op.add_column(sa.Column('segment', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('insights', sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column('insights_updated_at', crm_backend.db.UTCDateTime(timezone=True), nullable=True))
        batch_op.create_index(batch_op.f('ix_customers_loyalty_tier'), ['loyalty_tier'], unique=False)
        batch_op.create_index(batch_op.f('ix_customers_segment'), ['segment'], unique=False)

    with op.batch_alter_table('tickets', schema=None) as batch_op:
        batch_op.add_column(sa.Column('priority_reason', sa.Text(), nullable=True))
        # The dashboard's periods filter on when tickets and handoffs began.
        batch_op.create_index(batch_op.f('ix_tickets_created_at'), ['created_at'], unique=False)

    with op.batch_alter_table('handoffs', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_handoffs_created_at'), ['created_at'], unique=False)

    op.create_table(
        'insight_models',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('kind', sa.String(length=32), nullable=False),
        sa.Column('params', sa.JSON(), nullable=False),
        sa.Column('metrics', sa.JSON(), nullable=False),
        sa.Column('trained_rows', sa.Integer(), nullable=False),
        sa.Column('created_at', crm_backend.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_insight_models')),
    )
    with op.batch_alter_table('insight_models', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_insight_models_kind'), ['kind'], unique=False)
        batch_op.create_index(batch_op.f('ix_insight_models_created_at'), ['created_at'], unique=False)

    op.create_table(
        'conversations',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('conversation_id', sa.String(length=128), nullable=False),
        sa.Column('channel', sa.String(length=32), nullable=False),
        sa.Column('customer_id', sa.Integer(), nullable=True),
        sa.Column('started_at', crm_backend.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column('last_message_at', crm_backend.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column('user_messages', sa.Integer(), nullable=False),
        sa.Column('handed_off', sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], name=op.f('fk_conversations_customer_id_customers')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_conversations')),
        sa.UniqueConstraint('conversation_id', name=op.f('uq_conversations_conversation_id')),
    )
    with op.batch_alter_table('conversations', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_conversations_customer_id'), ['customer_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_conversations_started_at'), ['started_at'], unique=False)


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table('conversations', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_conversations_started_at'))
        batch_op.drop_index(batch_op.f('ix_conversations_customer_id'))
    op.drop_table('conversations')
    with op.batch_alter_table('insight_models', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_insight_models_created_at'))
        batch_op.drop_index(batch_op.f('ix_insight_models_kind'))
    op.drop_table('insight_models')
    with op.batch_alter_table('handoffs', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_handoffs_created_at'))
    with op.batch_alter_table('tickets', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_tickets_created_at'))
        batch_op.drop_column('priority_reason')
    with op.batch_alter_table('customers', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_customers_segment'))
        batch_op.drop_index(batch_op.f('ix_customers_loyalty_tier'))
        batch_op.drop_column('insights_updated_at')
        batch_op.drop_column('insights')
        batch_op.drop_column('segment')
        batch_op.drop_column('churn_risk')
        batch_op.drop_column('loyalty_tier')
        batch_op.drop_column('loyalty_score')
        batch_op.drop_column('lifetime_value')
