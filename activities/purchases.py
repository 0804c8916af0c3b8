"""The purchase workflow's effects: read the payment, record stages, create the user, send e-mails.

Each activity is safe to run again: it first looks at what the database already holds, and every
outside call carries an idempotency key derived from the workflow id.
"""

from __future__ import annotations

import re
from typing import Any

from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.catalogue import mercadopago_items
from activities.credentials import cipher, generate_password
from activities.emails import EmailType, brl, payment_method_label, render
from activities.failures import provider_failure
from activities.mailer import mailer_for
from contracts.errors import ErrorCode
from contracts.purchases import (
    CREATE_USER,
    DEACTIVATE_USER,
    FETCH_PAYMENT,
    MP_STATES,
    SEND_CONFIRMATION,
    SEND_CREDENTIALS,
    SET_STAGE,
    CreateUser,
    FetchPayment,
    OrderRef,
    OrderState,
    Payment,
    StageChange,
)
from db import operations, order_errors, orders
from db.email_batches import BatchItem
from db.journal import insert_log
from db.pool import in_autocommit
from providers.clients import ProviderClients
from providers.errors import ConflictError, NotFoundError, ProviderError
from providers.mercadopago import MercadoPagoPayment
from providers.resend import EmailMessage
from settings import Settings
from telemetry import events

_TAG_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")
_REFUSALS: dict[type[ProviderError], ErrorCode] = {
    ConflictError: ErrorCode.CONFLICT_ERROR,
    NotFoundError: ErrorCode.NOT_FOUND_ERROR,
}


def failure(exc: ProviderError) -> ApplicationError:
    """A provider's error as Temporal must see it (the one mapping of `activities.failures`);
    a refusal keeps its error class as its type, which `last_error` shows."""
    return provider_failure(exc, permanent_type=_REFUSALS.get(type(exc), ErrorCode.PERMANENT_ERROR))


def payer_name(payment: MercadoPagoPayment) -> str | None:
    """MP often sends no payer name: fall back to metadata, then to the e-mail's local part."""
    parts = [p for p in (payment.payer.first_name, payment.payer.last_name) if p]
    if parts:
        return " ".join(parts)
    for key in ("full_name", "name", "customer_name"):
        if isinstance(value := payment.metadata.get(key), str) and value.strip():
            return value.strip()
    if payment.payer.email:
        return payment.payer.email.split("@", 1)[0]
    return None


def _refunded() -> ApplicationError:
    return ApplicationError(
        "o pedido foi estornado: não é provisionado",
        type=ErrorCode.ORDER_REFUNDED,
        non_retryable=True,
    )


async def record_stage(conn: AsyncConnection[Any], change: StageChange) -> OrderState:
    """One transition written (orders and integration_logs) and reported (log line, metrics);
    the caller owns the transaction. The order's state after it."""
    state = await orders.apply_stage(conn, change)
    took = None
    if change.stage == "completed" and state.stage == "completed":
        took = await operations.provisioning_seconds(conn, change.order_id)
    events.stage_changed(
        change.order_id,
        change.stage,
        applied=state.stage == change.stage,
        attempts=change.attempts,
        error=change.last_error,
        provisioning_seconds=took,
    )
    return state


class PurchaseActivities:
    def __init__(
        self, settings: Settings, pool: AsyncConnectionPool, providers: ProviderClients
    ) -> None:
        self._settings = settings
        self._pool = pool
        self._providers = providers
        self._cipher = cipher(settings.secret("credentials_key"))
        self._mailer = mailer_for(
            pool,
            providers.resend,
            requests_per_second=settings.resend_rate_limit,
            sealer=self._cipher,
        )

    @activity.defn(name=FETCH_PAYMENT)
    async def fetch_payment(self, request: FetchPayment) -> Payment:
        """The payment's real state at Mercado Pago (the notification body is never trusted)."""
        try:
            found = await self._providers.mercadopago.get_payment(request.provider_order_id)
        except ProviderError as exc:
            mapped = failure(exc)
            await self._record_failure(request, mapped.message)
            raise mapped from exc
        return Payment(
            # An unknown status grants nothing: the order waits for the next notification.
            state=MP_STATES.get(found.status, "pending"),
            provider_status=found.status,
            email=found.payer.email,
            name=payer_name(found),
            amount=found.transaction_amount,
            currency=found.currency_id or "BRL",
            payment_method=found.payment_method_id,
            items=mercadopago_items(found),
            created_at=found.date_created or found.date_approved,
        )

    @activity.defn(name=SET_STAGE)
    async def set_stage(self, change: StageChange) -> OrderState:
        """Write one transition to orders and integration_logs: one statement, committed on
        its own (no transaction round trips)."""
        return await in_autocommit(self._pool, lambda conn: record_stage(conn, change))

    @activity.defn(name=CREATE_USER)
    async def create_user(self, ref: CreateUser) -> str:
        """The customer's Lovable user id; created at most once per order.

        With `ref.stage` the order enters it first (unless it is there already), and with
        `ref.then` it enters that once the user exists, in the transaction that stores the user:
        the workflow writes neither itself (patch `purchases-lean-path`)."""
        async with self._pool.connection() as conn:
            order = await orders.get_order(conn, ref.order_id)
            if ref.stage is not None and (order is None or order.stage != ref.stage.stage):
                await record_stage(conn, ref.stage)
                order = await orders.get_order(conn, ref.order_id)
        if order is None:
            raise ApplicationError(
                f"order {ref.order_id} is not recorded", type=ErrorCode.ORDER_MISSING
            )
        if order.lovable_user_id:
            if ref.then is not None:
                async with self._pool.connection() as conn:
                    await record_stage(conn, ref.then)
            return order.lovable_user_id
        if order.refunded_at is not None:
            raise _refunded()
        if not order.customer_email:
            raise ApplicationError(
                "o pagamento não informa o e-mail do cliente",
                type=ErrorCode.INVALID_DATA,
                non_retryable=True,
            )
        async with self._pool.connection() as conn:
            # A barrier, not held during the call: a refund deciding about this customer's user
            # right now finishes first (its deactivation done, which this creation then undoes
            # for another order of the customer; for this very order, the refund is seen below
            # and nothing is created). Any refund deciding later sees this order, already
            # `creating_user`, as live, and its stored password (see `_find_lost_user`). The
            # password is stored (committed) before the call, so every attempt sends the same.
            await orders.lock_customer(conn, order.customer_email)
            now = await orders.get_order(conn, ref.order_id)
            if now is None or now.refunded_at is not None:
                raise _refunded()
            await insert_log(
                conn,
                workflow_id=ref.order_id,
                event="attempt",
                stage="creating_user",
                attempt=activity.info().attempt,
            )
            token = await orders.store_password_once(
                conn, ref.order_id, self._cipher.encrypt(generate_password().encode())
            )
        try:
            user = await self._providers.lovable.create_user(
                email=order.customer_email,
                password=self._cipher.decrypt(token).decode(),
                full_name=order.customer_name or order.customer_email,
                order_id=ref.order_id,
                idempotency_key=f"{ref.order_id}:user",
            )
        except Exception as exc:
            await self._log_failure(ref.order_id, "creating_user", exc)
            if isinstance(exc, ProviderError):
                raise failure(exc) from exc
            raise
        async with self._pool.connection() as conn:
            # Stored at once, so that no later retry (of this or of the e-mail) makes a second
            # user. A user this order's own earlier attempt created (that answer lost) is new:
            # its password is the one stored here, and the credentials e-mail carries it.
            existed = not user.created_by(ref.order_id)
            await orders.store_user(conn, ref.order_id, user.user_id, existed=existed)
            if ref.then is not None:
                await record_stage(conn, ref.then)
        return user.user_id

    @activity.defn(name=SEND_CREDENTIALS)
    async def send_credentials(self, ref: OrderRef) -> None:
        """E-mail the login, then erase the password: it is never needed again."""
        order = await self._order(ref.order_id)
        if order.refunded_at is not None:
            raise _refunded()
        key = f"{ref.order_id}:credentials"
        password: str | None = None
        if not order.user_existed:
            if order.encrypted_password is None:
                async with self._pool.connection() as conn:
                    if await orders.email_sent(conn, key):
                        return
                raise ApplicationError(
                    "a senha gerada não está mais guardada",
                    type=ErrorCode.INVALID_DATA,
                    non_retryable=True,
                )
            password = self._cipher.decrypt(order.encrypted_password).decode()
        await self._send(
            order,
            "credentials",
            key,
            email=order.customer_email,
            password=password,
            login_url=self._settings.product_login_url,
        )

    @activity.defn(name=SEND_CONFIRMATION)
    async def send_confirmation(self, ref: OrderRef) -> None:
        """Tell the customer the order was received and that the access e-mail follows; not
        once the order is refunded (the access e-mail will never follow)."""
        order = await self._order(ref.order_id)
        if order.refunded_at is not None:
            return
        await self._send(
            order,
            "purchase_confirmation",
            f"{ref.order_id}:purchase_confirmation",
            amount=brl(order.amount_cents),
            payment_method=payment_method_label(order.payment_method),
        )

    @activity.defn(name=DEACTIVATE_USER)
    async def deactivate_user(self, ref: OrderRef) -> bool:
        """Record the refund for good and take this order's access away; False when no user was
        ever made for it.

        Lovable keeps one user per e-mail, which several orders may share: the user is
        deactivated only when no other live order (not refunded, being provisioned or completed)
        grants it. The decision and the call happen under the customer's lock, so two refunds at
        once cannot both leave the user active, nor a new order's user creation slip between.
        """
        async with self._pool.connection() as conn, conn.transaction():
            order = await orders.get_order(conn, ref.order_id)
            if order is None:
                return False
            if order.customer_email:
                await orders.lock_customer(conn, order.customer_email)
            # Read first: recording the refund erases the stored password.
            order = await orders.get_order(conn, ref.order_id)
            in_doubt = await orders.user_creation_in_doubt(conn, ref.order_id)
            decision = await orders.record_refund(conn, ref.order_id)
            if decision is None or order is None:
                return False
            if decision.lovable_user_id is None:
                if not in_doubt:
                    return False
                await self._find_lost_user(conn, order)
                decision = await orders.record_refund(conn, ref.order_id)
                assert decision is not None and decision.lovable_user_id is not None
            if decision.deactivate:
                try:
                    await self._providers.lovable.deactivate_user(decision.lovable_user_id)
                except ProviderError as exc:
                    raise failure(exc) from exc
            else:
                await insert_log(
                    conn,
                    workflow_id=ref.order_id,
                    event="user_kept",
                    details={"live_orders": decision.kept_for},
                )
        return True

    async def _find_lost_user(self, conn: AsyncConnection[Any], order: orders.Order) -> None:
        """A creation attempt got no answer (timed out, or its worker died), so it may have made
        a user this order holds no id for. Lovable has no lookup: the same idempotent request
        (key and stored password) answers that user, or makes it if the attempt never arrived,
        and it is stored on the order, so the refund decides about it like any other."""
        assert order.encrypted_password is not None and order.customer_email
        try:
            user = await self._providers.lovable.create_user(
                email=order.customer_email,
                password=self._cipher.decrypt(order.encrypted_password).decode(),
                full_name=order.customer_name or order.customer_email,
                order_id=order.order_id,
                idempotency_key=f"{order.order_id}:user",
            )
        except ProviderError as exc:
            raise failure(exc) from exc
        existed = not user.created_by(order.order_id)
        await orders.store_user(conn, order.order_id, user.user_id, existed=existed)

    # --- helpers ------------------------------------------------------------------------------

    async def _order(self, order_id: str) -> orders.Order:
        async with self._pool.connection() as conn:
            order = await orders.get_order(conn, order_id)
        if order is None:
            raise ApplicationError(
                f"order {order_id} is not recorded", type=ErrorCode.ORDER_MISSING
            )
        return order

    async def _send(
        self, order: orders.Order, email_type: EmailType, key: str, **context: Any
    ) -> None:
        async with self._pool.connection() as conn:
            if await orders.email_sent(conn, key):
                if email_type == "credentials":
                    await orders.erase_password(conn, order.order_id)
                return
            # In the same round trip: e-mails come by the hundred.
            await insert_log(
                conn,
                workflow_id=order.order_id,
                event="attempt",
                stage=f"sending_{email_type}",
                attempt=activity.info().attempt,
            )
        if not order.customer_email:
            raise ApplicationError(
                "sem e-mail do cliente", type=ErrorCode.INVALID_DATA, non_retryable=True
            )
        subject, html, text = render(
            email_type,
            product_name=self._settings.product_name,
            name=order.customer_name or order.customer_email,
            order_id=order.order_id,
            **context,
        )
        message = EmailMessage(
            from_=self._settings.email_from,
            to=order.customer_email,
            subject=subject,
            html=html,
            text=text,
            tags={"email_type": email_type, "order_id": _TAG_UNSAFE.sub("_", order.order_id)},
        )
        # Which e-mail this is, in email_logs, whether it is accepted or not.
        logged = {
            "workflow_id": order.order_id,
            "email_type": email_type,
            "recipient": order.customer_email,
            "idempotency_key": key,
        }
        try:
            # Batched with the other e-mails of this worker. The batch's answer is recorded in
            # one transaction: the `sent` row, and a credentials e-mail's password erased.
            await self._mailer.deliver(BatchItem(**logged, payload=message.payload()))
        except Exception as exc:
            await self._log_failure(order.order_id, f"sending_{email_type}", exc)
            async with self._pool.connection() as conn:
                await orders.log_email(conn, **logged, status="failed", error=str(exc))
            if isinstance(exc, ProviderError):
                raise failure(exc) from exc
            raise

    async def _record_failure(self, request: FetchPayment, error: str) -> None:
        """Name the failure on the order, so a person sees the outage while it lasts; best
        effort, as the database may be what is down."""
        order_id = activity.info().workflow_id
        if not order_id:
            return
        try:
            async with self._pool.connection(timeout=2) as conn:
                await order_errors.record_failure(
                    conn,
                    order_id=order_id,
                    provider="mercadopago",
                    provider_order_id=request.provider_order_id,
                    error=error,
                )
        except Exception:  # the provider's error is the one to report
            activity.logger.warning("could not record the failure on %s", order_id)

    async def _log_attempt(self, order_id: str, step: str) -> None:
        async with self._pool.connection() as conn:
            await insert_log(
                conn,
                workflow_id=order_id,
                event="attempt",
                stage=step,
                attempt=activity.info().attempt,
            )

    async def _log_failure(self, order_id: str, step: str, exc: Exception) -> None:
        # Whether the provider answered (an HTTP status): if not, the attempt may have acted.
        answered = isinstance(exc, ProviderError) and exc.status is not None
        async with self._pool.connection() as conn:
            await insert_log(
                conn,
                workflow_id=order_id,
                event="attempt_failed",
                stage=step,
                attempt=activity.info().attempt,
                error=str(exc),
                details={"answered": answered},
            )
