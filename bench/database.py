"""Choose, create, migrate and seed the bench database (runs before Django is set up)."""

from __future__ import annotations

import hashlib
import os
import re
import secrets
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
VAR = ROOT / "var"
PG_HOST, PG_PORT, PG_USER = "127.0.0.1", 5432, "postgres"
# BENCH_PG_DATABASE: another database name, e.g. for a second checkout benching at the same time.
PG_DATABASE = os.environ.get("BENCH_PG_DATABASE", "ketaclinic_bench")
if not re.fullmatch(r"[a-z_][a-z0-9_]{0,62}", PG_DATABASE):
    raise SystemExit("bench: BENCH_PG_DATABASE must be a plain lower-case identifier")
SQLITE_PATH = VAR / "bench.sqlite3"
# BENCH_PATIENTS: a smaller seed, e.g. to try the bench code itself on a scratch database.
PATIENTS = int(os.environ.get("BENCH_PATIENTS", "10000"))
SEED = 2026


@dataclass
class Database:
    url: str
    vendor: str  # "postgresql" or "sqlite"
    label: str


def postgres_answers(timeout: float = 1.0) -> bool:
    try:
        with socket.create_connection((PG_HOST, PG_PORT), timeout=timeout):
            return True
    except OSError:
        return False


def choose(*, reseed: bool, sqlite: bool = False) -> Database:
    """PostgreSQL when a server answers on 127.0.0.1:5432 (a dedicated database, kept between
    runs), else (or with sqlite=True) SQLite at var/bench.sqlite3. BENCH_DATABASE_URL overrides
    both."""
    override = os.environ.get("BENCH_DATABASE_URL")
    if override:
        vendor = "sqlite" if override.startswith("sqlite") else "postgresql"
        return Database(override, vendor, "BENCH_DATABASE_URL")
    if not sqlite and postgres_answers():
        import psycopg

        with psycopg.connect(
            host=PG_HOST, port=PG_PORT, user=PG_USER, dbname="postgres", autocommit=True
        ) as conn:
            exists = conn.execute(
                "SELECT 1 FROM pg_database WHERE datname = %s", [PG_DATABASE]
            ).fetchone()
            if exists and reseed:
                conn.execute(f'DROP DATABASE "{PG_DATABASE}" WITH (FORCE)')
                exists = None
            if not exists:
                conn.execute(f'CREATE DATABASE "{PG_DATABASE}"')
        url = f"postgres://{PG_USER}@{PG_HOST}:{PG_PORT}/{PG_DATABASE}"
        return Database(url, "postgresql", f"PostgreSQL {PG_HOST}:{PG_PORT}/{PG_DATABASE}")
    VAR.mkdir(exist_ok=True)
    if reseed:
        for suffix in ("", "-wal", "-shm"):
            Path(f"{SQLITE_PATH}{suffix}").unlink(missing_ok=True)
    return Database(f"sqlite:///{SQLITE_PATH}", "sqlite", f"SQLite {SQLITE_PATH}")


def seed_fingerprint() -> str:
    """Changes whenever the demo seed does: its code (ketaclinic/demo and every feature's
    demo.py, which later features add to the seed) and the bench's patient count and seed."""
    digest = hashlib.sha256(f"{PATIENTS}:{SEED}".encode())
    paths = sorted(
        [*ROOT.glob("ketaclinic/demo/**/*.py"), *ROOT.glob("ketaclinic/*/demo.py")],
        key=lambda p: p.relative_to(ROOT).as_posix(),
    )
    for path in paths:
        digest.update(path.relative_to(ROOT).as_posix().encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


# bench_seed_marker: the bench's own note in its database of which seed the data comes from
# (not a Django model; migrations never touch it).


def seeded_fingerprint(db: Database) -> str | None:
    """The fingerprint the database was seeded with (None: never seeded by this bench). Read
    before Django is set up, so a stale database can be dropped and built again."""
    query = "SELECT fingerprint FROM bench_seed_marker WHERE id = 1"
    try:
        if db.vendor == "postgresql":
            import psycopg

            with psycopg.connect(db.url, autocommit=True) as conn:
                row = conn.execute(query).fetchone()
        else:
            import sqlite3

            with sqlite3.connect(db.url.removeprefix("sqlite:///")) as conn:
                row = conn.execute(query).fetchone()
    except Exception:  # no marker table yet
        return None
    return str(row[0]) if row else None


def mark_seeded(fingerprint: str, when: str) -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE TABLE IF NOT EXISTS bench_seed_marker (id integer PRIMARY KEY, "
            "fingerprint varchar(64) NOT NULL, seeded_at varchar(40) NOT NULL)"
        )
        cursor.execute("DELETE FROM bench_seed_marker")
        cursor.execute(
            "INSERT INTO bench_seed_marker (id, fingerprint, seeded_at) VALUES (1, %s, %s)",
            [fingerprint, when],
        )


def vacuum_analyze(db: Database) -> str:
    """Fresh planner statistics (and, on PostgreSQL, a visibility map for index-only scans), as
    autovacuum would keep them on a running server. Returns a note for the printout."""
    if db.vendor == "postgresql":
        import psycopg

        with psycopg.connect(db.url, autocommit=True) as conn:
            autovacuum = conn.execute("SHOW autovacuum").fetchone()
            conn.execute("VACUUM (ANALYZE)")
        return f"VACUUM (ANALYZE) done (server autovacuum={autovacuum[0] if autovacuum else '?'})"
    import sqlite3

    with sqlite3.connect(db.url.removeprefix("sqlite:///")) as conn:
        conn.execute("ANALYZE")
    return "ANALYZE done"


def server_env(db: Database, secret_key: str | None = None) -> dict[str, str]:
    """Production settings (DEBUG off, audit on, persistent connections) over plain HTTP on the
    loopback interface. Used for the bench process itself, its management commands and
    gunicorn."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KETACLINIC_", "DJANGO_"))}
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings",
        DATABASE_URL=db.url,
        DATABASE_CONN_MAX_AGE="600",
        DJANGO_SECRET_KEY=secret_key or "bench-" + secrets.token_urlsafe(48),
        DJANGO_DEBUG="0",
        DJANGO_ALLOWED_HOSTS="127.0.0.1,localhost,testserver",
        KETACLINIC_HTTPS="0",
        KETACLINIC_SSL_REDIRECT="0",
    )
    return env


def manage(env: dict[str, str], *args: str, quiet: bool = True) -> float:
    """Run `ketaclinic <args>` in a child process; returns its wall time in seconds."""
    started = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-m", "ketaclinic.core.cli", *args],
        cwd=ROOT,
        env=env,
        capture_output=quiet,
        text=True,
        check=False,
    )
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        if quiet:
            sys.stderr.write(result.stdout[-4000:] + result.stderr[-4000:])
        raise SystemExit(f"bench: `ketaclinic {' '.join(args)}` failed ({result.returncode})")
    return elapsed


COMMIT_PROBE_WRITES = 300


def commit_floor(writes: int = COMMIT_PROBE_WRITES) -> dict[str, Any]:
    """What one durable write costs on this machine before any application code runs: a
    one-row INSERT committed on its own (autocommit), `writes` times, into a scratch table that
    is dropped afterwards. Every API write, and every audited read (its audit row), waits for
    one such commit (security.md R25: PostgreSQL synchronous_commit=on, SQLite WAL +
    synchronous=FULL), so with one request at a time its p50 bounds requests per second."""
    from django.db import connection

    samples: list[float] = []
    with connection.cursor() as cursor:
        cursor.execute("DROP TABLE IF EXISTS bench_commit_probe")
        cursor.execute("CREATE TABLE bench_commit_probe (id integer PRIMARY KEY, v integer)")
        try:
            for i in range(writes):
                started = time.perf_counter()
                cursor.execute("INSERT INTO bench_commit_probe (id, v) VALUES (%s, %s)", [i, i])
                samples.append((time.perf_counter() - started) * 1000)
            setting = ""
            if connection.vendor == "postgresql":
                cursor.execute("SHOW synchronous_commit")
                setting = f"synchronous_commit={cursor.fetchone()[0]}"
            else:
                cursor.execute("PRAGMA synchronous")
                setting = f"PRAGMA synchronous={cursor.fetchone()[0]}"
        finally:
            cursor.execute("DROP TABLE IF EXISTS bench_commit_probe")
    from bench.stats import percentile

    p50, p95 = percentile(samples, 50), percentile(samples, 95)
    return {
        "what": "one-row INSERT committed on its own, sequentially",
        "writes": writes,
        "setting": setting,
        "p50_ms": round(p50, 3),
        "p95_ms": round(p95, 3),
        "max_sequential_writes_per_s": round(1000 / p50, 1),
    }
