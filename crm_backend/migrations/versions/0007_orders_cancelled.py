"""orders: status cancelled (order.cancelled) and cancelled_at

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02 09:00:00

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa
import crm_backend.db  # noqa: F401  (autogenerate renders UTCDateTime from here)


# revision identifiers, used by Alembic.
revision: str = '0007'
down_revision: Union[str, Sequence[str], None] = '0006'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

OLD_STATUSES = "status IN ('placed', 'paid', 'fulfilled', 'partially_refunded', 'refunded')"
NEW_STATUSES = "status IN ('placed', 'paid', 'fulfilled', 'partially_refunded', 'refunded', 'cancelled')"


def upgrade() -> None:
    """Upgrade schema."""
    with op.batch_alter_table('orders', schema=None) as batch_op:
        batch_op.add_column(sa.Column('cancelled_at', crm_backend.db.UTCDateTime(timezone=True), nullable=True))
        batch_op.drop_constraint(batch_op.f('ck_orders_status'), type_='check')
        batch_op.create_check_constraint(batch_op.f('ck_orders_status'), sa.text(NEW_STATUSES))


def downgrade() -> None:
    """Downgrade schema."""
    # A cancelled order has no place in the old status set: it was a
    # placed order the customer did not keep, which the old set calls refunded.
    op.execute("UPDATE orders SET status = 'refunded', refunded_amount = amount WHERE status = 'cancelled'")
    with op.batch_alter_table('orders', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('ck_orders_status'), type_='check')
        batch_op.create_check_constraint(batch_op.f('ck_orders_status'), sa.text(OLD_STATUSES))
        batch_op.drop_column('cancelled_at')
