"""What the bench measures: a list of named page specs.

A later feature adds its page with one `PageSpec` appended to PAGES (and, when it needs data the
foundation does not have, a context hook that looks it up once before measuring):

    def _session_ids(ctx: BenchContext) -> None:
        ctx.extra["session_ids"] = list(...)

    CONTEXT_HOOKS.append(_session_ids)
    PAGES.append(PageSpec("session board", lambda ctx, i: "/sessions/board/"))

`path(ctx, i)` gives the URL of the i-th request, so pages can vary ids or search words; `auth`
says how the request is signed in ("session": a staff member who has completed MFA; "token": an
API personal access token sent as `Authorization: Bearer …`).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

# The staff member whose pages are measured (a nurse of the bigger demo clinic).
BENCH_USERNAME = "nurse.ortiz"


@dataclass
class BenchContext:
    """Looked up once, before any timing: who is signed in and which records exist."""

    user: Any
    clinic_id: int
    patient_ids: list[int]  # patients of the user's clinic, shuffled deterministically
    search_words: list[str]  # name prefixes as staff type them, drawn from the seeded names
    token: str = ""  # raw API token of `user`
    extra: dict[str, Any] = field(default_factory=dict)

    def patient_id(self, i: int) -> int:
        return self.patient_ids[i % len(self.patient_ids)]

    def search_word(self, i: int) -> str:
        return self.search_words[i % len(self.search_words)]


@dataclass(frozen=True)
class PageSpec:
    name: str
    path: Callable[[BenchContext, int], str]
    auth: str = "session"  # "session" or "token"
    is_floor: bool = False
    expect_status: int = 200


def search_words_from(names: list[tuple[str, str]], count: int, seed: int) -> list[str]:
    """Prefixes of 2–5 letters of real last or first names, typed in lower case; one in five is
    two words ("smi jo"), as when staff narrow down a common surname."""
    rng = random.Random(seed)
    words = []
    for _ in range(count):
        last, first = rng.choice(names)
        word = last[: rng.randint(2, 5)].lower()
        if rng.random() < 0.2:
            word += " " + first[: rng.randint(1, 3)].lower()
        elif rng.random() < 0.25:
            word = first[: rng.randint(2, 5)].lower()
        words.append(word)
    return words


FLOOR = PageSpec(
    "floor (1 indexed query)",
    lambda ctx, i: f"/bench/floor/{ctx.patient_id(i)}",
    is_floor=True,
)

PAGES: list[PageSpec] = [
    FLOOR,
    PageSpec("patient list", lambda ctx, i: "/patients/"),
    PageSpec(
        "patient search",
        lambda ctx, i: "/patients/?" + urlencode({"q": ctx.search_word(i)}),
    ),
    PageSpec("patient chart", lambda ctx, i: f"/patients/{ctx.patient_id(i)}/"),
    PageSpec("API patient list", lambda ctx, i: "/api/v1/patients?limit=25", auth="token"),
]

# Callables run once on the BenchContext before measuring (see the module docstring).
CONTEXT_HOOKS: list[Callable[[BenchContext], None]] = []


def _treatment_pages(ctx: BenchContext) -> None:
    """Issue 5: the day board on the demo's session day, and charts of the patients whose
    intake, eligibility decisions and courses the demo seeded (a chart with history)."""
    from ketaclinic.accounts.models import Clinic
    from ketaclinic.courses.demo import demo_day
    from ketaclinic.screening.models import Intake

    clinic = Clinic.objects.get(pk=ctx.clinic_id)
    ctx.extra["board_day"] = demo_day(clinic).isoformat()
    ctx.extra["history_patient_ids"] = sorted(
        Intake.objects.filter(clinic_id=ctx.clinic_id).values_list("patient_id", flat=True)
    )


def _history_chart(ctx: BenchContext, i: int) -> str:
    ids = ctx.extra["history_patient_ids"]
    return f"/patients/{ids[i % len(ids)]}/"


CONTEXT_HOOKS.append(_treatment_pages)
PAGES += [
    PageSpec("day board", lambda ctx, i: f"/courses/board/?day={ctx.extra['board_day']}"),
    PageSpec("patient chart with history", _history_chart),
]


def _ledger(ctx: BenchContext) -> None:
    """Issue 4: two years of ledger activity at the bench clinic (≥ 50,000 entries, valid hash
    chain), append throughput, verification time and the administrator's 1304.22(c) log."""
    from bench import ledger

    ledger.prepare(ctx)


CONTEXT_HOOKS.append(_ledger)
PAGES += [
    PageSpec("CS balances", lambda ctx, i: f"/controlled-substances/{ctx.clinic_id}/"),
    PageSpec(
        "CS ledger, administrations",
        lambda ctx, i: f"/controlled-substances/{ctx.clinic_id}/ledger/?kind=administer",
    ),
]


def _measures(ctx: BenchContext) -> None:
    """Issue 7: a patient with two years of weekly scores, and 3,000 alerts in the clinic."""
    from bench import measures

    measures.prepare(ctx)


CONTEXT_HOOKS.append(_measures)
PAGES += [
    PageSpec(
        "chart, 2 years of scores",
        lambda ctx, i: f"/patients/{ctx.extra['trajectory_patient_id']}/",
    ),
    PageSpec("alert inbox", lambda ctx, i: "/measures/alerts/"),
    PageSpec(
        "API scores, 2 years",
        lambda ctx, i: f"/api/v1/measures/patients/{ctx.extra['trajectory_patient_id']}/scores",
        auth="token",
    ),
]


def _sessions(ctx: BenchContext) -> None:
    """Issue 6: 20 chairs with a patient in each at the bench clinic, and a signed esketamine
    session for the session pages."""
    from bench import sessions

    sessions.prepare(ctx)


CONTEXT_HOOKS.append(_sessions)
PAGES += [
    PageSpec("room board, 20 chairs", lambda ctx, i: f"/sessions/board/?clinic={ctx.clinic_id}"),
    PageSpec(
        "room board rows (htmx poll)",
        lambda ctx, i: f"/sessions/board/rows/?clinic={ctx.clinic_id}",
    ),
    # The session workspace (/sessions/<id>/) once it is on main; the REMS form until then.
    PageSpec("session flowsheet", lambda ctx, i: ctx.extra["session_path"]),
    PageSpec("REMS form, printable", lambda ctx, i: ctx.extra["rems_print_path"]),
]
