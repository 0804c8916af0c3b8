"""What the purchase workflow, its activities, the gateway and the database exchange (pydantic,
no I/O)."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, Field

Provider = Literal["mercadopago", "appmax"]

# docs/interfaces.md, "Purchase stages".
Stage = Literal[
    "awaiting_payment",
    "queued",
    "creating_user",
    "failed_at_user",
    "sending_credentials",
    "failed_at_email",
    "completed",
    "failed_permanent",
    "cancelled",
    "revoked",
]
STAGES: tuple[str, ...] = Stage.__args__  # type: ignore[attr-defined]

# A provider's payment status, reduced to what the workflow decides on.
PaymentState = Literal["pending", "approved", "rejected", "refunded", "charged_back"]

MP_STATES: dict[str, PaymentState] = {
    "approved": "approved",
    "pending": "pending",
    "authorized": "pending",
    "in_process": "pending",
    "in_mediation": "pending",
    "rejected": "rejected",
    "cancelled": "rejected",
    "refunded": "refunded",
    "charged_back": "charged_back",
}
APPMAX_STATES: dict[str, PaymentState] = {
    "OrderApproved": "approved",
    "OrderPaid": "approved",
    "OrderPaidByPix": "approved",
    "OrderRefund": "refunded",
    "OrderChargeBackInTreatment": "charged_back",
}

# Activity names (the activity type on the wire; the workflow calls the methods they name).
FETCH_PAYMENT = "purchases.fetch_payment"
SET_STAGE = "purchases.set_stage"
CREATE_USER = "purchases.create_user"
SEND_CREDENTIALS = "purchases.send_credentials"
SEND_CONFIRMATION = "purchases.send_confirmation"
DEACTIVATE_USER = "purchases.deactivate_user"
MATCH_PRODUCT = "purchases.match_product"
# How every catalogue mismatch reason begins: an order parked with it paid for nothing we sell.
CATALOGUE_MISMATCH = "pagamento não confere com o catálogo"


def workflow_id(provider: Provider, provider_order_id: str) -> str:
    """docs/interfaces.md: `purchase:<provider>:<id>`; also the order's primary key."""
    return f"purchase:{provider}:{provider_order_id}"


class PurchaseConfig(BaseModel):
    """Settings the workflow needs, fixed at start so that replays decide the same way."""

    retry_schedule: list[timedelta] = Field(
        default_factory=lambda: [timedelta(minutes=5), timedelta(minutes=10), timedelta(minutes=20)]
    )
    payment_deadline: timedelta = timedelta(days=7)
    # How long a completed order keeps listening for a refund or chargeback.
    revocation_window: timedelta = timedelta(days=180)
    step_attempts: int = 3
    step_initial_interval: timedelta = timedelta(seconds=1)
    # How long one activity attempt may run before Temporal gives it to another worker (this is
    # also how long a crashed worker's attempt takes to be noticed).
    step_timeout: timedelta = timedelta(seconds=30)
    # The rate-limited e-mail queue (RESEND_RATE_LIMIT); None (runs started before it): the
    # workflow's own queue.
    email_task_queue: str | None = None


class PaymentItem(BaseModel):
    """One line of what was bought, as the checkout described it to the provider."""

    product_id: str | None = None
    title: str | None = None
    quantity: int = 1
    unit_price: Decimal | None = None


class Payment(BaseModel):
    """The facts of a payment as the provider reports them."""

    state: PaymentState
    provider_status: str
    email: str | None = None
    name: str | None = None
    phone: str | None = None
    amount: Decimal | None = None
    currency: str = "BRL"
    payment_method: str | None = None
    # What was bought (empty when the provider names no product) and when: the catalogue's
    # price must have been valid at `created_at` (README, "The product catalogue").
    items: list[PaymentItem] = Field(default_factory=list)
    created_at: datetime | None = None
    # AppMax's `total_products`: the products' value before shipping and card interest, which
    # its `total` includes. None when the provider reports only the amount charged.
    products_amount: Decimal | None = None


class PaymentNotice(BaseModel):
    """The `payment_updated` signal: a provider told us something changed.

    Mercado Pago notices carry only the action (the workflow re-fetches the payment); AppMax has
    no API to fetch from, so its notice carries the Apphook's facts.
    """

    action: str
    payment: Payment | None = None


class PurchaseInput(BaseModel):
    provider: Provider
    provider_order_id: str
    config: PurchaseConfig = Field(default_factory=PurchaseConfig)


class FetchPayment(BaseModel):
    provider_order_id: str


class MatchProduct(BaseModel):
    order_id: str
    payment: Payment
    # The stage a match leads to (`queued`), written with the verdict in one transaction; None
    # (runs before patch `purchases-lean-path`): the workflow writes it itself.
    then: StageChange | None = None


class ProductMatch(BaseModel):
    """Which catalogue product an approved payment paid for, or why it matches none."""

    product_id: str | None = None
    mismatch: str | None = None
    # The order after `then` was written (a match only).
    order: OrderState | None = None


class StageChange(BaseModel):
    """One transition, written to `orders` and `integration_logs` together."""

    order_id: str
    provider: Provider
    provider_order_id: str
    stage: Stage
    attempts: int = 0
    last_error: str | None = None
    next_retry_at: datetime | None = None
    payment: Payment | None = None


class OrderState(BaseModel):
    """What the database remembers of an order, so a rerun never repeats an effect."""

    stage: Stage
    lovable_user_id: str | None = None
    credentials_sent: bool = False
    # A refund or chargeback was seen for the order, in this run or an earlier one: final.
    refunded: bool = False


class OrderRef(BaseModel):
    order_id: str


class CreateUser(OrderRef):
    """`create_user`'s request; an OrderRef alone (runs before patch `purchases-lean-path`)
    writes no stage."""

    # The order's stage while the user is made (`creating_user`), written by the activity
    # itself unless the order is in it already ...
    stage: StageChange | None = None
    # ... and the stage it is in once the user exists (`sending_credentials`).
    then: StageChange | None = None


class StageEntry(BaseModel):
    stage: Stage
    at: datetime
    error: str | None = None


class PurchaseStatus(BaseModel):
    """The `status` query."""

    stage: Stage
    attempts: int
    last_error: str | None
    next_retry_at: datetime | None
    history: list[StageEntry]


class CancelRequest(BaseModel):
    """The `cancel` signal: an operator ends an order that will never succeed."""

    reason: str
    actor: str


class PurchaseResult(BaseModel):
    order_id: str
    stage: Stage
    lovable_user_id: str | None = None
