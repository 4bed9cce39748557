"""The JSON API over HTTP under gunicorn (DEBUG off, persistent DB connections, audit on).

Client, server and database all run on this machine and talk over the loopback interface only.
Loops are bounded by a request count and a time limit; the server is always stopped.
"""

from __future__ import annotations

import http.client
import json
import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from bench.stats import percentile

HOST = "127.0.0.1"
WORKERS = int(os.environ.get("BENCH_GUNICORN_WORKERS", "2"))
# gthread (with one thread per worker) keeps HTTP/1.1 connections alive; the sync worker closes
# every connection after one response, which costs a TCP handshake per request.
WORKER_CLASS = os.environ.get("BENCH_GUNICORN_WORKER_CLASS", "gthread")
CREATE_MAX_REQUESTS = 1000
CREATE_MAX_SECONDS = 20.0
READ_WARMUP = 50
READ_REQUESTS = 1000
READ_MAX_SECONDS = 60.0
STARTUP_SECONDS = 30.0

FIRST = ("Avery", "Jordan", "Riley", "Morgan", "Quinn", "Harper", "Rowan", "Emerson", "Sage")
LAST = ("Whitaker", "Okonkwo", "Lindqvist", "Marchetti", "Delacroix", "Nakamura", "Brennan")


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


class ApiClient:
    """One HTTP/1.1 connection, reused while the server keeps it open (http.client reconnects
    by itself when a server closes it, e.g. gunicorn's sync worker after every response)."""

    def __init__(self, port: int, token: str) -> None:
        self.conn = http.client.HTTPConnection(HOST, port, timeout=30)
        self.headers = {
            "Authorization": f"Bearer {token}",
            "Accept": "application/json",
            "Connection": "keep-alive",
        }

    def request(self, method: str, path: str, body: Any = None) -> tuple[int, bytes]:
        headers = dict(self.headers)
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        try:
            self.conn.request(method, path, body=data, headers=headers)
            response = self.conn.getresponse()
        except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
            self.conn.close()  # server closed an idle kept-alive connection: retry once
            self.conn.request(method, path, body=data, headers=headers)
            response = self.conn.getresponse()
        payload = response.read()
        if response.will_close:
            self.conn.close()
        return response.status, payload

    def close(self) -> None:
        self.conn.close()


@dataclass
class ApiFigures:
    server: str
    create_requests: int = 0
    create_seconds: float = 0.0
    read_samples_ms: list[float] = field(default_factory=list)
    audit_rows_written: int = 0

    @property
    def patients_per_s(self) -> float:
        return self.create_requests / self.create_seconds if self.create_seconds else 0.0


def _payload(clinic_id: int, i: int) -> dict[str, Any]:
    born = date(1960, 1, 1) + timedelta(days=(i * 97) % 15000)
    return {
        "clinic_id": clinic_id,
        "first_name": FIRST[i % len(FIRST)],
        "last_name": f"{LAST[i % len(LAST)]}-Bench",
        "date_of_birth": born.isoformat(),
        "sex_at_birth": "female" if i % 2 else "male",
        "phone": f"+1 617 555 {i % 10000:04d}",
        "email": f"bench{i}@example.com",
        "city": "Boston",
        "state": "MA",
    }


def start_server(env: dict[str, str], port: int, log_path: Path) -> subprocess.Popen[bytes]:
    args = [
        sys.executable, "-m", "gunicorn", "config.wsgi:application",
        "--bind", f"{HOST}:{port}",
        "--workers", str(WORKERS),
        "--threads", "1",
        "--worker-class", WORKER_CLASS,
        "--timeout", "30",
        "--log-level", "warning",
        "--error-logfile", str(log_path),
    ]  # fmt: skip
    root = Path(__file__).resolve().parent.parent
    quiet = subprocess.DEVNULL
    return subprocess.Popen(args, cwd=root, env=env, stdout=quiet, stderr=quiet)


def wait_ready(proc: subprocess.Popen[bytes], port: int, log_path: Path) -> None:
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"bench: gunicorn exited ({proc.returncode}); see {log_path}")
        try:
            conn = http.client.HTTPConnection(HOST, port, timeout=2)
            conn.request("GET", "/accounts/login/")
            conn.getresponse().read()
            conn.close()
            return
        except OSError:
            time.sleep(0.2)
    raise SystemExit(f"bench: gunicorn silent for {STARTUP_SECONDS:.0f}s; see {log_path}")


def stop_server(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()  # SIGTERM: gunicorn's graceful shutdown of its own workers
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


def run(
    env: dict[str, str],
    *,
    token: str,
    clinic_id: int,
    read_ids: list[int],
    log_path: Path,
    created_ids: list[int],
) -> ApiFigures:
    """Appends the id of every patient it creates to created_ids (for the caller's clean-up)."""
    from ketaclinic.audit.models import AuditEvent

    port = free_port()
    figures = ApiFigures(
        server=f"gunicorn config.wsgi -w {WORKERS} --threads 1 -k {WORKER_CLASS} on {HOST}:{port}"
    )
    audit_before = AuditEvent.objects.count()
    proc = start_server(env, port, log_path)
    client = ApiClient(port, token)
    try:
        wait_ready(proc, port, log_path)
        # Warm both workers up (imports, connections) before timing.
        for i in range(20):
            status, body = client.request("POST", "/api/v1/patients", _payload(clinic_id, i))
            _expect(201, status, body, "warm-up create")
            created_ids.append(json.loads(body)["id"])
            status, body = client.request("GET", f"/api/v1/patients/{read_ids[i]}")
            _expect(200, status, body, "warm-up read")

        started = time.perf_counter()
        for i in range(20, 20 + CREATE_MAX_REQUESTS):
            status, body = client.request("POST", "/api/v1/patients", _payload(clinic_id, i))
            _expect(201, status, body, "create")
            created_ids.append(json.loads(body)["id"])
            figures.create_requests += 1
            if time.perf_counter() - started > CREATE_MAX_SECONDS:
                break
        figures.create_seconds = time.perf_counter() - started

        for i in range(READ_WARMUP):
            status, body = client.request("GET", f"/api/v1/patients/{read_ids[i]}")
            _expect(200, status, body, "read warm-up")
        deadline = time.perf_counter() + READ_MAX_SECONDS
        for i in range(READ_REQUESTS):
            path = f"/api/v1/patients/{read_ids[(READ_WARMUP + i) % len(read_ids)]}"
            t0 = time.perf_counter()
            status, body = client.request("GET", path)
            elapsed = time.perf_counter() - t0
            _expect(200, status, body, "read")
            figures.read_samples_ms.append(elapsed * 1000)
            if time.perf_counter() > deadline:
                break
    finally:
        client.close()
        stop_server(proc)
    figures.audit_rows_written = AuditEvent.objects.count() - audit_before
    return figures


def _expect(want: int, status: int, body: bytes, what: str) -> None:
    if status != want:
        raise SystemExit(f"bench: {what} answered HTTP {status}: {body[:300]!r}")


def p50_p95(samples: list[float]) -> tuple[float, float]:
    return percentile(samples, 50), percentile(samples, 95)


# --- Vital signs from devices (issue 6) -------------------------------------------------------
# Batches as a BP cuff or pulse oximeter gateway sends them, spread over the chairs; then single
# readings, one reading per request, one request at a time (the way a nurse's tablet or a
# simple device posts), which is what GNU Health's 65.3 vital-sign records/s measures.
VITALS_BATCH_SIZE = 250
VITALS_BATCHES = 40
VITALS_BATCH_MAX_SECONDS = 30.0
VITALS_SINGLE_MAX_REQUESTS = 3000
VITALS_SINGLE_MAX_SECONDS = 15.0


@dataclass
class VitalsFigures:
    server: str
    chairs: int
    batch_requests: int = 0
    batch_readings: int = 0
    batch_seconds: float = 0.0
    batch_samples_ms: list[float] = field(default_factory=list)
    resent_created: int | None = None  # a re-sent batch must create nothing
    resent_duplicates: int | None = None
    single_requests: int = 0
    single_seconds: float = 0.0
    single_samples_ms: list[float] = field(default_factory=list)
    audit_rows_written: int = 0

    @property
    def batch_readings_per_s(self) -> float:
        return self.batch_readings / self.batch_seconds if self.batch_seconds else 0.0

    @property
    def single_readings_per_s(self) -> float:
        return self.single_requests / self.single_seconds if self.single_seconds else 0.0


def _reading(i: int) -> dict[str, int]:
    """An unremarkable reading (no alert), varied a little."""
    return {
        "systolic_mmhg": 112 + i % 23,
        "diastolic_mmhg": 68 + i % 13,
        "heart_rate_bpm": 62 + i % 19,
        "spo2_pct": 95 + i % 5,
        "respiratory_rate_per_min": 12 + i % 6,
    }


def _batch(prefix: str, size: int) -> dict[str, Any]:
    return {"readings": [{"client_id": f"{prefix}-{j}", **_reading(j)} for j in range(size)]}


def run_vitals(
    env: dict[str, str], *, token: str, session_ids: list[int], log_path: Path
) -> VitalsFigures:
    """POST /api/v1/sessions/<id>/vitals/batch and /vitals against checked-in sessions."""
    from ketaclinic.audit.models import AuditEvent

    port = free_port()
    figures = VitalsFigures(
        server=f"gunicorn config.wsgi -w {WORKERS} --threads 1 -k {WORKER_CLASS} on {HOST}:{port}",
        chairs=len(session_ids),
    )
    audit_before = AuditEvent.objects.count()
    proc = start_server(env, port, log_path)
    client = ApiClient(port, token)

    def path(i: int, tail: str) -> str:
        return f"/api/v1/sessions/{session_ids[i % len(session_ids)]}/{tail}"

    try:
        wait_ready(proc, port, log_path)
        for i in range(20):  # warm both workers up (imports, connections, prepared plans)
            status, body = client.request("POST", path(i, "vitals/batch"), _batch(f"w{i}", 10))
            _expect(200, status, body, "vitals batch warm-up")
            status, body = client.request("POST", path(i, "vitals"), _reading(i))
            _expect(201, status, body, "vitals warm-up")

        started = time.perf_counter()
        for b in range(VITALS_BATCHES):
            payload = _batch(f"b{b}", VITALS_BATCH_SIZE)
            t0 = time.perf_counter()
            status, body = client.request("POST", path(b, "vitals/batch"), payload)
            figures.batch_samples_ms.append((time.perf_counter() - t0) * 1000)
            _expect(200, status, body, "vitals batch")
            created = json.loads(body)["created"]
            if created != VITALS_BATCH_SIZE:
                raise SystemExit(f"bench: a new batch created {created}, not {VITALS_BATCH_SIZE}")
            figures.batch_requests += 1
            figures.batch_readings += created
            if time.perf_counter() - started > VITALS_BATCH_MAX_SECONDS:
                break
        figures.batch_seconds = time.perf_counter() - started
        # Idempotency under the real server: the first batch again records nothing.
        status, body = client.request(
            "POST", path(0, "vitals/batch"), _batch("b0", VITALS_BATCH_SIZE)
        )
        _expect(200, status, body, "vitals batch re-sent")
        resent = json.loads(body)
        figures.resent_created, figures.resent_duplicates = resent["created"], resent["duplicates"]

        started = time.perf_counter()
        for i in range(VITALS_SINGLE_MAX_REQUESTS):
            t0 = time.perf_counter()
            status, body = client.request("POST", path(i, "vitals"), _reading(i))
            figures.single_samples_ms.append((time.perf_counter() - t0) * 1000)
            _expect(201, status, body, "vitals single")
            figures.single_requests += 1
            if time.perf_counter() - started > VITALS_SINGLE_MAX_SECONDS:
                break
        figures.single_seconds = time.perf_counter() - started
    finally:
        client.close()
        stop_server(proc)
    figures.audit_rows_written = AuditEvent.objects.count() - audit_before
    return figures
