"""Server-side latency inside one process: django.test.Client through the full middleware stack.

Requires Django to be set up (bench.run does it with production settings: DEBUG off, audit on,
persistent connections). The pages are measured in interleaved rounds, so a burst of background
load on the machine hits every page alike instead of skewing one of them.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext, override_settings
from django_otp import DEVICE_ID_SESSION_KEY
from django_otp.plugins.otp_totp.models import TOTPDevice

from bench.pages import CONTEXT_HOOKS, BenchContext, PageSpec, search_words_from
from bench.stats import percentile

BENCH_URLCONF = "bench.urls"


@dataclass
class PageResult:
    spec: PageSpec
    samples_ms: list[float] = field(default_factory=list)
    queries: int = 0
    query_counts: list[int] = field(default_factory=list)
    sql: list[str] = field(default_factory=list)

    @property
    def p50(self) -> float:
        return percentile(self.samples_ms, 50)

    @property
    def p95(self) -> float:
        return percentile(self.samples_ms, 95)


def build_context(username: str, seed: int, page_words: list[str] | None = None) -> BenchContext:
    import random

    from ketaclinic.accounts import access, services
    from ketaclinic.accounts.models import User

    user = User.objects.get(username=username)
    clinic_ids = access.clinic_ids_for(user, "patient.view")
    if not clinic_ids:
        raise SystemExit(f"bench: {username} has no clinic; was the demo seed loaded?")
    patients = access.patients_for(user).order_by("id")
    ids = list(patients.values_list("id", flat=True))
    names = list(patients.values_list("last_name", "first_name"))
    rng = random.Random(seed)
    rng.shuffle(ids)
    _, raw = services.api_token_create(actor=user, name="bench", days=1)
    ctx = BenchContext(
        user=user,
        clinic_id=clinic_ids[0],
        patient_ids=ids,
        search_words=search_words_from(names, 500, seed),
        token=raw,
    )
    if page_words:
        ctx.extra["page_words"] = page_words
    for hook in CONTEXT_HOOKS:
        hook(ctx)
    return ctx


def _session_client(user: Any) -> Client:
    """A staff member signed in with the TOTP step completed (as tests/conftest.py `login`)."""
    device = TOTPDevice.objects.filter(user=user, confirmed=True).first()
    if device is None:
        device = TOTPDevice.objects.create(user=user, name="bench", confirmed=True)
    client = Client()
    client.force_login(user)
    session = client.session
    session[DEVICE_ID_SESSION_KEY] = device.persistent_id
    session.save()
    return client


def _check(spec: PageSpec, path: str, status: int) -> None:
    if status != spec.expect_status:
        want = spec.expect_status
        raise SystemExit(f"bench: {spec.name}: GET {path} answered {status}, not {want}")


def measure(
    ctx: BenchContext,
    pages: list[PageSpec],
    *,
    requests: int,
    warmup: int,
    rounds: int,
    query_samples: int = 3,
) -> list[PageResult]:
    results = [PageResult(spec) for spec in pages]
    with override_settings(ROOT_URLCONF=BENCH_URLCONF):
        session_client = _session_client(ctx.user)
        token_client = Client(HTTP_AUTHORIZATION=f"Bearer {ctx.token}")

        def client_for(spec: PageSpec) -> Client:
            return token_client if spec.auth == "token" else session_client

        counter = 0
        for result in results:  # warm-up: imports, template loading, connection, plan caches
            for _ in range(warmup):
                path = result.spec.path(ctx, counter)
                counter += 1
                _check(result.spec, path, client_for(result.spec).get(path).status_code)

        for result in results:  # SQL statements per request (not timed: the capture costs)
            for _ in range(query_samples):
                path = result.spec.path(ctx, counter)
                counter += 1
                with CaptureQueriesContext(connection) as captured:
                    response = client_for(result.spec).get(path)
                _check(result.spec, path, response.status_code)
                result.query_counts.append(len(captured.captured_queries))
                result.sql = [q["sql"] for q in captured.captured_queries]
            result.queries = max(result.query_counts)

        per_round = max(1, -(-requests // rounds))
        for _ in range(rounds):
            for result in results:
                client = client_for(result.spec)
                for _ in range(per_round):
                    if len(result.samples_ms) >= requests:
                        break
                    path = result.spec.path(ctx, counter)
                    counter += 1
                    started = time.perf_counter()
                    response = client.get(path)
                    elapsed = time.perf_counter() - started
                    _check(result.spec, path, response.status_code)
                    result.samples_ms.append(elapsed * 1000)
    return results
