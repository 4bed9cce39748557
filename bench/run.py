"""`make bench` (`python -m bench.run`): seed once, measure, print a table, write results.json.

1. Database: PostgreSQL when a server answers on 127.0.0.1:5432 (database `ketaclinic_bench`,
   kept and reused once it holds the 10,000 seeded patients), else SQLite at var/bench.sqlite3.
2. Server-side latency of each page in bench/pages.py (p50/p95, SQL statements per request),
   in this process with production settings, against the floor: a minimal authenticated view
   doing one indexed query. Target: every page's p95 ≤ 3× the floor's p95.
3. The JSON API over HTTP under gunicorn: patients created per second and p50/p95 of reading one
   patient, compared with GNU Health 5.0.6 on the same kind of machine.
4. Vital signs from devices over HTTP (issue 6): readings/s ingested in batches (target ≥ 500/s)
   and single readings posted one request at a time (target ≥ 5× GNU Health's 65.3 records/s).

Options: --requests N (per page, default 300), --reseed (drop and seed again, to time the seed),
--no-http (skip gunicorn), --no-pages (skip step 2), --sqlite (SQLite even when PostgreSQL
answers), --show-sql (print each page's SQL), --pages WORD[,WORD…] (only the pages whose name
contains one of the words, plus the floor; for quick comparisons while working on a page: it also
skips the ledger's append and verify timings, allows fewer than 200 requests and does not write
results.json). The machine's load average is recorded: other work on the machine skews latency.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import database

RESULTS = Path(__file__).resolve().parent / "results.json"
RATIO_TARGET = 3.0
# GNU Health 5.0.6 (Tryton, gunicorn, the same PostgreSQL), from issue 2.
GNU_HEALTH = {"patients_per_s": 38.6, "read_p50_ms": 10.1, "read_p95_ms": 13.6}
THROUGHPUT_FACTOR = 5.0  # at least 5× GNU Health's registrations per second
P95_FACTOR = 0.3  # at most 0.3× GNU Health's read p95
# GNU Health 5.0.6 records 65.3 vital-sign records/s over HTTP (gunicorn, PostgreSQL; issue 6).
GNU_HEALTH_VITALS_PER_S = 65.3
VITALS_SINGLE_FACTOR = 5.0  # single readings: at least 5× GNU Health
VITALS_BATCH_TARGET_PER_S = 500.0  # readings/s in batches (issue 6)
VITALS_CHAIRS = 20


def _configure_process(env: dict[str, str]) -> None:
    for key in list(os.environ):
        if key.startswith(("KETACLINIC_", "DJANGO_")):
            del os.environ[key]
    os.environ.update(env)


def _machine() -> dict[str, Any]:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "nproc": os.cpu_count(),
        "cpu": model,
        "platform": platform.platform(),
        "python": platform.python_version(),
    }


def _load() -> list[float]:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return []


def _git() -> dict[str, Any]:
    """The code measured: HEAD and whether the working tree had uncommitted changes."""
    root = database.ROOT

    def git(*args: str) -> str:
        result = subprocess.run(
            ["git", *args], cwd=root, capture_output=True, text=True, check=False
        )
        return result.stdout.strip() if result.returncode == 0 else ""

    changed = [
        line[3:]
        for line in git("status", "--porcelain").splitlines()
        if not line[3:].startswith("bench/")
    ]
    return {"commit": git("rev-parse", "HEAD"), "uncommitted_paths_outside_bench": len(changed)}


def _patient_count() -> int:
    from ketaclinic.demo.seed import ORG_SLUG
    from ketaclinic.patients.models import Patient

    return Patient.objects.filter(organisation__slug=ORG_SLUG).count()


def _db_version(vendor: str) -> str:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT version()" if vendor == "postgresql" else "SELECT sqlite_version()")
        return str(cursor.fetchone()[0])


def _previous_seed() -> dict[str, Any] | None:
    try:
        seed = json.loads(RESULTS.read_text()).get("seed") or {}
    except (OSError, ValueError):
        return None
    return seed if seed.get("seconds") else seed.get("last_measured")


def _fmt(value: float) -> str:
    return f"{value:8.2f}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=300, help="timed requests per page")
    parser.add_argument("--warmup", type=int, default=30)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--reseed", action="store_true")
    parser.add_argument("--no-http", action="store_true")
    parser.add_argument("--no-pages", action="store_true", help="skip the in-process page latency")
    parser.add_argument("--sqlite", action="store_true", help="SQLite even when PostgreSQL answers")
    parser.add_argument("--show-sql", action="store_true")
    parser.add_argument(
        "--pages",
        default="",
        help="comma-separated words: only the pages whose name contains one (and the floor)",
    )
    args = parser.parse_args(argv)
    page_words = [w.strip().lower() for w in args.pages.split(",") if w.strip()]
    # A SIGTERM unwinds like Ctrl-C, so the `finally` that stops gunicorn always runs.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    if args.requests < 200 and not page_words:
        parser.error("--requests must be at least 200 (fewer only with --pages)")
    started = time.perf_counter()
    load_before = _load()

    # 1. Database ------------------------------------------------------------------------------
    db = database.choose(reseed=args.reseed, sqlite=args.sqlite)
    fingerprint = database.seed_fingerprint()
    if not args.reseed and database.seeded_fingerprint(db) != fingerprint:
        # Built by another version of the demo seed (or not by this bench): start afresh, so
        # the data is exactly what `ketaclinic seed` makes today and its time is measured.
        print("The demo seed differs from the one this database was built with: rebuilding it.")
        db = database.choose(reseed=True, sqlite=args.sqlite)
    env = database.server_env(db)
    _configure_process(env)
    print(f"Database: {db.label}")
    migrate_s = database.manage(env, "migrate", "--noinput")
    database.manage(env, "collectstatic", "--noinput")  # DEBUG off: pages need the manifest
    print(f"Migrated in {migrate_s:.1f}s.")

    import django

    django.setup()
    from django.db import connection

    before = _patient_count()
    seed: dict[str, Any]
    if before < database.PATIENTS:
        print(f"Seeding {database.PATIENTS:,} patients (found {before:,}) …", flush=True)
        seconds = database.manage(
            env, "seed", "--patients", str(database.PATIENTS), "--seed", str(database.SEED)
        )
        database.mark_seeded(fingerprint, datetime.now(UTC).isoformat(timespec="seconds"))
        seed = {
            "ran": True,
            "seconds": round(seconds, 2),
            "patients_before": before,
            "fingerprint": fingerprint,
        }
        print(f"Seeded in {seconds:.1f}s (`ketaclinic seed --patients 10000 --seed 2026`).")
    else:
        previous = _previous_seed()
        seed = {
            "ran": False,
            "seconds": None,
            "last_measured": previous,
            "fingerprint": fingerprint,
        }
        note = f"; last measured seed: {previous['seconds']}s" if previous else ""
        print(f"Reusing the seeded database ({before:,} patients){note}.")
    patients = _patient_count()
    print(database.vacuum_analyze(db) + ".")

    # 2. Server-side latency -------------------------------------------------------------------
    from bench import inprocess
    from bench.pages import BENCH_USERNAME, PAGES

    pages = PAGES
    if page_words:
        pages = [p for p in PAGES if p.is_floor or any(w in p.name.lower() for w in page_words)]
    ctx = inprocess.build_context(BENCH_USERNAME, database.SEED, page_words=page_words)
    # The context hooks add data (3,000 alerts, sessions in 20 chairs, ...) after the first
    # VACUUM (ANALYZE), and the bench server runs without autovacuum: without fresh statistics
    # the planner took the new alerts table for empty on the first run after a seed.
    print("After the context hooks: " + database.vacuum_analyze(db) + ".")
    rows: list[dict[str, Any]] = []
    floor = None
    if not args.no_pages:
        print(
            f"\nServer-side latency, in process ({connection.vendor}, {patients:,} patients, "
            f"signed in as {BENCH_USERNAME} with MFA; {args.requests} timed requests per page "
            f"after {args.warmup} warm-up, {args.rounds} interleaved rounds; load average "
            f"{_load()} on {os.cpu_count()} CPUs)",
            flush=True,
        )
        results = inprocess.measure(
            ctx, pages, requests=args.requests, warmup=args.warmup, rounds=args.rounds
        )
        floor = next(r for r in results if r.spec.is_floor)
        rows = []
        header = (
            f"{'page':<26}{'n':>6}{'p50 ms':>9}{'p95 ms':>9}{'p95/floor':>11}{'queries':>9}  target"
        )
        print(header)
        print("-" * len(header))
        for r in results:
            ratio = r.p95 / floor.p95
            ok = r.spec.is_floor or ratio <= RATIO_TARGET
            verdict = "(floor)" if r.spec.is_floor else ("PASS" if ok else "FAIL")
            print(
                f"{r.spec.name:<26}{len(r.samples_ms):>6}{_fmt(r.p50)} {_fmt(r.p95)}"
                f"{ratio:>10.2f}×{r.queries:>9}  {verdict}"
            )
            rows.append(
                {
                    "page": r.spec.name,
                    "example_path": r.spec.path(ctx, 0),
                    "auth": r.spec.auth,
                    "n": len(r.samples_ms),
                    "p50_ms": round(r.p50, 3),
                    "p95_ms": round(r.p95, 3),
                    "ratio_p95_to_floor": round(ratio, 3),
                    "queries": r.queries,
                    "queries_sampled": r.query_counts,
                    "target": None if r.spec.is_floor else f"p95 <= {RATIO_TARGET}x floor",
                    "pass": None if r.spec.is_floor else ok,
                }
            )
            if args.show_sql:
                for sql in r.sql:
                    print(f"      {sql[:300]}")
        if not args.show_sql:
            print(
                "(queries: SQL statements per request at this patient count; --show-sql lists them)"
            )

    # 3. JSON API over HTTP under gunicorn -----------------------------------------------------
    api: dict[str, Any] | None = None
    vitals: dict[str, Any] | None = None
    commit: dict[str, Any] | None = None
    if not args.no_http:
        commit = database.commit_floor()
        print(
            f"\nDurable commit on this machine ({commit['setting']}): a one-row INSERT committed "
            f"on its own, p50 {commit['p50_ms']:.2f} ms / p95 {commit['p95_ms']:.2f} ms, so at "
            f"most {commit['max_sequential_writes_per_s']:.0f} writes/s one request at a time "
            "(every API write and every audited read waits for one such commit)",
            flush=True,
        )
        api = _http_phase(env, ctx, db.vendor)
        # 4. Vital signs from devices over HTTP ----------------------------------------------
        vitals = _vitals_phase(env, ctx, db.vendor)

    output = {
        "timestamp": datetime.now(UTC).isoformat(timespec="seconds"),
        "code": _git(),
        "database": {"vendor": connection.vendor, "version": _db_version(db.vendor)},
        "patients": patients,
        "machine": _machine() | {"load_average_before": load_before, "load_average_after": _load()},
        "seed": seed,
        "server_side": None
        if floor is None
        else {
            "method": "django.test.Client in one process, production settings (DEBUG off, "
            "audit on, persistent connections); nearest-rank percentiles",
            "user": BENCH_USERNAME,
            "requests_per_page": args.requests,
            "warmup_per_page": args.warmup,
            "floor_p95_ms": round(floor.p95, 3),
            "target": f"every page p95 <= {RATIO_TARGET}x floor p95",
            "all_pass": all(row["pass"] is not False for row in rows),
            "pages": rows,
        },
        "durable_commit": commit,
        "http_api": api,
        "vitals_api": vitals,
        "bench_seconds": round(time.perf_counter() - started, 1),
    }
    if page_words:
        print(f"\nA partial run (--pages {args.pages}): bench/results.json left as it was.")
        return 0
    tmp = RESULTS.with_name(RESULTS.name + ".tmp")
    tmp.write_text(json.dumps(output, indent=2) + "\n")
    tmp.replace(RESULTS)
    print(f"\nWrote bench/results.json ({output['bench_seconds']:.0f}s in all).")
    return 0


def _http_phase(env: dict[str, str], ctx: Any, vendor: str) -> dict[str, Any]:
    from bench import http_api
    from ketaclinic.patients.models import Patient

    log_path = database.VAR / "bench-gunicorn.log"
    print(
        f"\nJSON API over HTTP under gunicorn ({vendor}, DEBUG off, CONN_MAX_AGE=600, audit on; "
        f"load average {_load()})",
        flush=True,
    )
    created: list[int] = []
    try:
        figures = http_api.run(
            env,
            token=ctx.token,
            clinic_id=ctx.clinic_id,
            read_ids=ctx.patient_ids,
            log_path=log_path,
            created_ids=created,
        )
    finally:
        # Keep the bench database at the seeded size: remove the patients the API created
        # (their audit rows stay; the audit trail is append-only).
        if created:
            try:
                Patient.objects.filter(pk__in=created).delete()
            except Exception as exc:  # e.g. a later feature's PROTECT foreign key
                print(f"  could not remove the {len(created)} API-created patients: {exc!r}")
    p50, p95 = http_api.p50_p95(figures.read_samples_ms)
    target_rate = GNU_HEALTH["patients_per_s"] * THROUGHPUT_FACTOR
    target_p95 = round(GNU_HEALTH["read_p95_ms"] * P95_FACTOR, 2)
    rate_ok = figures.patients_per_s >= target_rate
    p95_ok = p95 <= target_p95
    gh = GNU_HEALTH
    print(f"  server: {figures.server}")
    print(
        f"  create  POST /api/v1/patients  {figures.create_requests} patients in "
        f"{figures.create_seconds:.2f}s = {figures.patients_per_s:.1f}/s   "
        f"GNU Health {gh['patients_per_s']}/s, target ≥ {target_rate:.0f}/s "
        f"({figures.patients_per_s / gh['patients_per_s']:.1f}×)  {'PASS' if rate_ok else 'FAIL'}"
    )
    print(
        f"  read    GET /api/v1/patients/<id>  n={len(figures.read_samples_ms)}  "
        f"p50 {p50:.2f} ms  p95 {p95:.2f} ms   GNU Health p50 {gh['read_p50_ms']} / "
        f"p95 {gh['read_p95_ms']} ms, target p95 ≤ {target_p95} ms "
        f"({p95 / gh['read_p95_ms']:.2f}×)  {'PASS' if p95_ok else 'FAIL'}"
    )
    print(f"  audit rows written during the run: {figures.audit_rows_written:,}")
    return {
        "server": figures.server,
        "database": vendor,
        "client": "http.client, one request at a time, loopback",
        "create": {
            "requests": figures.create_requests,
            "seconds": round(figures.create_seconds, 3),
            "patients_per_s": round(figures.patients_per_s, 1),
            "target_per_s": target_rate,
            "ratio_to_gnu_health": round(figures.patients_per_s / gh["patients_per_s"], 2),
            "pass": rate_ok,
        },
        "read": {
            "n": len(figures.read_samples_ms),
            "p50_ms": round(p50, 3),
            "p95_ms": round(p95, 3),
            "target_p95_ms": target_p95,
            "ratio_p95_to_gnu_health": round(p95 / gh["read_p95_ms"], 3),
            "pass": p95_ok,
        },
        "audit_rows_written": figures.audit_rows_written,
        "gnu_health_5_0_6": gh,
    }


def _vitals_sessions(ctx: Any, chairs: int) -> list[int]:
    """Check in `chairs` patients (through the services, as a nurse would) for the readings."""
    from ketaclinic.patients.models import Patient
    from ketaclinic.treatment_sessions import services
    from ketaclinic.treatment_sessions.choices import ACTIVE_STATUSES
    from ketaclinic.treatment_sessions.models import TreatmentSession

    busy = set(
        TreatmentSession.objects.filter(status__in=ACTIVE_STATUSES).values_list(
            "patient_id", flat=True
        )
    )
    ids: list[int] = []
    for patient_id in ctx.patient_ids:
        if len(ids) == chairs:
            break
        if patient_id in busy:
            continue
        patient = Patient.objects.get(pk=patient_id)
        session = services.session_create(
            actor=ctx.user, patient=patient, treatment="iv_ketamine", planned_dose_mg=35
        )
        services.session_check_in(actor=ctx.user, session=session)
        ids.append(session.pk)
    return ids


def _remove_sessions(ids: list[int]) -> None:
    """Keep the bench database as seeded: drop the bench's own sessions and readings (their
    audit rows stay; the audit trail is append-only)."""
    from ketaclinic.treatment_sessions.models import (
        SessionTransition,
        TreatmentSession,
        VitalAlert,
        VitalSign,
    )

    VitalAlert.objects.filter(session_id__in=ids).delete()
    VitalSign.objects.filter(session_id__in=ids).delete()
    SessionTransition.objects.filter(session_id__in=ids).delete()
    TreatmentSession.objects.filter(pk__in=ids).delete()


def _vitals_phase(env: dict[str, str], ctx: Any, vendor: str) -> dict[str, Any]:
    from bench import http_api

    log_path = database.VAR / "bench-gunicorn.log"
    single_target = round(GNU_HEALTH_VITALS_PER_S * VITALS_SINGLE_FACTOR, 1)
    print(
        f"\nVital signs over HTTP under gunicorn ({vendor}, {VITALS_CHAIRS} checked-in chairs; "
        f"load average {_load()})",
        flush=True,
    )
    session_ids: list[int] = []
    try:
        session_ids = _vitals_sessions(ctx, VITALS_CHAIRS)
        figures = http_api.run_vitals(
            env, token=ctx.token, session_ids=session_ids, log_path=log_path
        )
    finally:
        if session_ids:
            try:
                _remove_sessions(session_ids)
            except Exception as exc:  # a later feature's PROTECT foreign key
                print(f"  could not remove the {len(session_ids)} bench sessions: {exc!r}")
    batch_ok = figures.batch_readings_per_s >= VITALS_BATCH_TARGET_PER_S
    single_ok = figures.single_readings_per_s >= single_target
    idempotent = figures.resent_created == 0
    b50, b95 = http_api.p50_p95(figures.batch_samples_ms)
    s50, s95 = http_api.p50_p95(figures.single_samples_ms)
    print(f"  server: {figures.server}")
    print(
        f"  batch   POST /api/v1/sessions/<id>/vitals/batch  {figures.batch_requests} batches of "
        f"{http_api.VITALS_BATCH_SIZE} = {figures.batch_readings} readings in "
        f"{figures.batch_seconds:.2f}s = {figures.batch_readings_per_s:.0f} readings/s "
        f"(p50 {b50:.1f} / p95 {b95:.1f} ms per batch), target ≥ "
        f"{VITALS_BATCH_TARGET_PER_S:.0f}/s  {'PASS' if batch_ok else 'FAIL'}"
    )
    print(
        f"  re-sent batch: created {figures.resent_created}, duplicates "
        f"{figures.resent_duplicates}  {'PASS' if idempotent else 'FAIL'}"
    )
    print(
        f"  single  POST /api/v1/sessions/<id>/vitals  {figures.single_requests} readings in "
        f"{figures.single_seconds:.2f}s = {figures.single_readings_per_s:.1f}/s "
        f"(p50 {s50:.2f} / p95 {s95:.2f} ms)   GNU Health {GNU_HEALTH_VITALS_PER_S}/s, target ≥ "
        f"{single_target}/s ({figures.single_readings_per_s / GNU_HEALTH_VITALS_PER_S:.1f}×)  "
        f"{'PASS' if single_ok else 'FAIL'}"
    )
    print(f"  audit rows written during the run: {figures.audit_rows_written:,}")
    return {
        "server": figures.server,
        "database": vendor,
        "client": "http.client, one request at a time, loopback",
        "chairs": figures.chairs,
        "batch": {
            "requests": figures.batch_requests,
            "batch_size": http_api.VITALS_BATCH_SIZE,
            "readings": figures.batch_readings,
            "seconds": round(figures.batch_seconds, 3),
            "readings_per_s": round(figures.batch_readings_per_s, 1),
            "p50_ms": round(b50, 2),
            "p95_ms": round(b95, 2),
            "target_per_s": VITALS_BATCH_TARGET_PER_S,
            "pass": batch_ok,
        },
        "resent_batch": {
            "created": figures.resent_created,
            "duplicates": figures.resent_duplicates,
            "pass": idempotent,
        },
        "single": {
            "requests": figures.single_requests,
            "seconds": round(figures.single_seconds, 3),
            "readings_per_s": round(figures.single_readings_per_s, 1),
            "p50_ms": round(s50, 3),
            "p95_ms": round(s95, 3),
            "target_per_s": single_target,
            "ratio_to_gnu_health": round(
                figures.single_readings_per_s / GNU_HEALTH_VITALS_PER_S, 2
            ),
            "pass": single_ok,
        },
        "audit_rows_written": figures.audit_rows_written,
        "gnu_health_5_0_6_vitals_per_s": GNU_HEALTH_VITALS_PER_S,
    }


if __name__ == "__main__":
    sys.exit(main())
