"""orders: number (the customer-facing order number) and fulfilment (shipped, carrier, tracking, delivery)

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-10 09:00:00

"""
import re
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa
import crm_backend.db  # noqa: F401  (autogenerate renders UTCDateTime from here)


# revision identifiers, used by Alembic.
revision: str = '0013'
down_revision: Union[str, Sequence[str], None] = '0012'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

# The rule of crm_backend/orders/numbers.py as it stood when this ran (a
# migration must not change when the code does): NW-100234, nw100234,
# #100234 and 100234 are all NW-100234.
ORDER_NUMBER = re.compile(r"^(?:nw)?[\s_-]*#?\s*([0-9]{3,12})$", re.IGNORECASE)
BATCH = 1000


def upgrade() -> None:
    """Upgrade schema."""
    with op.batch_alter_table('orders', schema=None) as batch_op:
        batch_op.add_column(sa.Column('number', sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column('shipped_at', crm_backend.db.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('carrier', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('tracking_number', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('tracking_url', sa.String(length=2000), nullable=True))
        batch_op.add_column(sa.Column('estimated_delivery', sa.Date(), nullable=True))
        batch_op.add_column(sa.Column('delivered_at', crm_backend.db.UTCDateTime(timezone=True), nullable=True))
        batch_op.create_index(batch_op.f('ix_orders_number'), ['number'], unique=False)
    # Orders already stored get their number from their id where it is one
    # (the shop's and the demo history's ids are: NW-200001). Their fulfilment
    # is unknown and stays empty; the next events or import fill it in.
    orders = sa.table('orders', sa.column('id', sa.Integer), sa.column('external_id', sa.String), sa.column('number', sa.String))
    connection = op.get_bind()
    numbered = []
    for order_id, external_id in connection.execute(sa.select(orders.c.id, orders.c.external_id)):
        match = ORDER_NUMBER.match(external_id.strip())
        if match:
            numbered.append({'order_id': order_id, 'number': f"NW-{match.group(1)}"})
    update = orders.update().where(orders.c.id == sa.bindparam('order_id')).values(number=sa.bindparam('number'))
    for start in range(0, len(numbered), BATCH):
        connection.execute(update, numbered[start:start + BATCH])


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table('orders', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_orders_number'))
        batch_op.drop_column('delivered_at')
        batch_op.drop_column('estimated_delivery')
        batch_op.drop_column('tracking_url')
        batch_op.drop_column('tracking_number')
        batch_op.drop_column('carrier')
        batch_op.drop_column('shipped_at')
        batch_op.drop_column('number')
