"""PROTOCOLS and plan_course: label schedules, clinic days, spacing, errors, properties."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal
from functools import cache
from itertools import combinations, pairwise

import pytest
from hypothesis import HealthCheck, event, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from ketaclinic.clinical import (
    PROTOCOLS,
    InvalidInput,
    Phase,
    PlannedSession,
    Protocol,
    plan_course,
)
from ketaclinic.clinical.protocols import MAX_PLAN_WEEKS, get_protocol

MONDAY = date(2025, 3, 3)
SATURDAY = date(2025, 3, 1)

# The cadence each protocol must follow, written out from the issue:
# (phase, first week, last week or None for open-ended, sessions per block, weeks per block).
SPEC: dict[str, list[tuple[str, int, int | None, int, int]]] = {
    "iv_ketamine_induction": [("induction", 1, 3, 2, 1)],
    "iv_ketamine_induction_3x_weekly": [("induction", 1, 2, 3, 1)],
    "esketamine_trd": [
        ("induction", 1, 4, 2, 1),
        ("maintenance_weekly", 5, 8, 1, 1),
        ("maintenance_every_2_weeks", 9, None, 1, 2),
    ],
    "esketamine_mdsi": [("acute", 1, 4, 2, 1)],
    "im_ketamine": [("induction", 1, 3, 2, 1)],
    "oral_ketamine": [("treatment", 1, 4, 1, 1)],
}
DEFAULT_WEEKS = {
    "iv_ketamine_induction": 3,
    "iv_ketamine_induction_3x_weekly": 2,
    "esketamine_trd": 8,
    "esketamine_mdsi": 4,
    "im_ketamine": 3,
    "oral_ketamine": 4,
}


def blocks(code: str, weeks: int) -> list[tuple[str, int, int, int]]:
    """(phase, first day offset, length in days, sessions) for each complete block."""
    result = []
    for phase, first, last, count, block_weeks in SPEC[code]:
        end = weeks if last is None else min(last, weeks)
        week = first
        while week + block_weeks - 1 <= end:
            result.append((phase, 7 * (week - 1), 7 * block_weeks, count))
            week += block_weeks
    return result


def feasible(code: str, weeks: int, start: date, clinic: frozenset[int]) -> bool:
    """Brute force: can any choice of clinic days satisfy every block with 2-day spacing?"""
    plan = blocks(code, weeks)

    @cache
    def search(index: int, previous: date | None) -> bool:
        if index == len(plan):
            return True
        _, first, length, count = plan[index]
        days = [
            start + timedelta(days=first + n)
            for n in range(length)
            if (start + timedelta(days=first + n)).weekday() in clinic
        ]
        for combo in combinations(days, count):
            if previous is not None and (combo[0] - previous).days < 2:
                continue
            if any((b - a).days < 2 for a, b in pairwise(combo)):
                continue
            if search(index + 1, combo[-1]):
                return True
        return False

    return search(0, None)


def check_plan(
    code: str, weeks: int, start: date, clinic: frozenset[int], plan: list[PlannedSession]
) -> None:
    """Assert every scheduling rule of the issue on ``plan``."""
    expected = blocks(code, weeks)
    assert [s.number for s in plan] == list(range(1, len(plan) + 1))
    assert len(plan) == sum(count for _, _, _, count in expected)
    for session in plan:
        assert session.date.weekday() in clinic
        assert session.route == PROTOCOLS[code].route
    for earlier, later in pairwise(plan):
        assert (later.date - earlier.date).days >= 2
    for phase, first, length, count in expected:
        window = [s for s in plan if 0 <= (s.date - start).days - first < length]
        assert len(window) == count, (phase, first)
        assert all(s.phase == phase for s in window)
    first_clinic_day = next(
        start + timedelta(days=n)
        for n in range(7)
        if (start + timedelta(days=n)).weekday() in clinic
    )
    if plan:
        assert plan[0].date == first_clinic_day


# ---------------------------------------------------------------- definitions


def test_protocol_codes() -> None:
    assert set(PROTOCOLS) == set(SPEC)


@pytest.mark.parametrize("code", sorted(SPEC))
def test_protocol_phases_match_the_spec(code: str) -> None:
    protocol = PROTOCOLS[code]
    phases = [
        (p.name, p.first_week, p.last_week, p.sessions_per_block, p.block_weeks)
        for p in protocol.phases
    ]
    assert phases == SPEC[code]
    assert protocol.default_weeks == DEFAULT_WEEKS[code]
    assert protocol.source
    assert protocol.clinic_defined is (code in ("im_ketamine", "oral_ketamine"))
    assert protocol.review_after_course is (code == "esketamine_mdsi")
    assert get_protocol(code) is protocol
    assert get_protocol(protocol) is protocol


def test_routes_and_dose_rules() -> None:
    iv = PROTOCOLS["iv_ketamine_induction"].phases[0]
    assert (iv.dose_mg_per_kg, iv.minutes, iv.dose_mg) == (Decimal("0.5"), 40, None)
    assert PROTOCOLS["iv_ketamine_induction"].route == "iv"
    assert PROTOCOLS["esketamine_trd"].route == "intranasal"
    assert PROTOCOLS["esketamine_trd"].allowed_doses_mg == (56, 84)
    assert PROTOCOLS["im_ketamine"].route == "im"
    assert PROTOCOLS["oral_ketamine"].route == "oral"


# ---------------------------------------------------------------- plans


def test_iv_induction_twice_weekly_for_3_weeks() -> None:
    plan = plan_course("iv_ketamine_induction", MONDAY)
    assert [s.date for s in plan] == [MONDAY + timedelta(days=d) for d in (0, 3, 7, 10, 14, 17)]
    assert all(s.dose_mg_per_kg == Decimal("0.5") and s.minutes == 40 for s in plan)
    assert all(s.dose_mg is None and s.route == "iv" and s.phase == "induction" for s in plan)
    assert (plan[-1].date - plan[0].date).days < 21


def test_iv_induction_three_times_weekly_is_6_in_2_weeks() -> None:
    plan = plan_course("iv_ketamine_induction_3x_weekly", MONDAY)
    assert [s.date for s in plan] == [MONDAY + timedelta(days=d) for d in (0, 2, 4, 7, 9, 11)]


def test_start_on_a_non_clinic_day_begins_on_the_next_clinic_day() -> None:
    plan = plan_course("iv_ketamine_induction", SATURDAY)
    assert plan[0].date == MONDAY
    assert len(plan) == 6
    assert all((s.date - SATURDAY).days <= 20 for s in plan)
    check_plan("iv_ketamine_induction", 3, SATURDAY, frozenset(range(5)), plan)


def test_esketamine_trd_label_schedule_through_week_8() -> None:
    plan = plan_course("esketamine_trd", MONDAY)
    assert [s.phase for s in plan] == ["induction"] * 8 + ["maintenance_weekly"] * 4
    assert all(s.dose_mg == 56 and s.dose_mg_per_kg is None for s in plan)
    assert plan[0].dose_mg == 56
    assert all(s.route == "intranasal" and s.minutes is None for s in plan)
    check_plan("esketamine_trd", 8, MONDAY, frozenset(range(5)), plan)


def test_esketamine_trd_weeks_extends_maintenance_every_2_weeks() -> None:
    plan = plan_course("esketamine_trd", MONDAY, weeks=12)
    maintenance = [s for s in plan if s.phase == "maintenance_every_2_weeks"]
    assert len(plan) == 14
    assert [(s.date - MONDAY).days for s in maintenance] == [56, 70]  # Mondays, weeks 9 and 11
    # An incomplete final 2-week block is not planned.
    assert plan_course("esketamine_trd", MONDAY, weeks=13) == plan
    assert len(plan_course("esketamine_trd", MONDAY, weeks=4)) == 8


def test_esketamine_mdsi_is_8_sessions_of_84_mg() -> None:
    plan = plan_course("esketamine_mdsi", MONDAY)
    assert len(plan) == 8
    assert all(s.dose_mg == 84 and s.phase == "acute" for s in plan)
    assert PROTOCOLS["esketamine_mdsi"].review_after_course is True


def test_clinic_defined_protocols_plan_too() -> None:
    assert len(plan_course("im_ketamine", MONDAY)) == 6
    oral = plan_course("oral_ketamine", MONDAY, clinic_days=(2,))
    assert [s.date.weekday() for s in oral] == [2, 2, 2, 2]
    assert [(s.date - MONDAY).days for s in oral] == [2, 9, 16, 23]


def test_custom_clinic_days() -> None:
    plan = plan_course("iv_ketamine_induction", MONDAY, clinic_days=[1, 3])
    assert [s.date.weekday() for s in plan] == [1, 3] * 3
    check_plan("iv_ketamine_induction", 3, MONDAY, frozenset({1, 3}), plan)


def test_weekend_clinic() -> None:
    plan = plan_course("esketamine_mdsi", MONDAY, clinic_days=(5, 6, 2))
    check_plan("esketamine_mdsi", 4, MONDAY, frozenset({2, 5, 6}), plan)


def test_clinic_days_that_cannot_hold_the_protocol() -> None:
    with pytest.raises(InvalidInput, match="clinic days Mon, Tue cannot hold protocol"):
        plan_course("iv_ketamine_induction", MONDAY, clinic_days=(0, 1))
    with pytest.raises(InvalidInput, match="cannot hold"):
        plan_course("iv_ketamine_induction_3x_weekly", MONDAY, clinic_days=(0, 2))
    # Once a week is enough for the oral protocol.
    assert len(plan_course("oral_ketamine", MONDAY, clinic_days=(0,))) == 4


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"weeks": 0}, "weeks for iv_ketamine_induction must be at least 1"),
        ({"weeks": 4}, "weeks for iv_ketamine_induction must be at most 3"),
        ({"weeks": True}, "must be a whole number"),
        ({"weeks": 2.0}, "must be a whole number"),
        ({"clinic_days": ()}, "at least one weekday"),
        ({"clinic_days": (7,)}, "clinic day"),
        ({"clinic_days": (-1, 2)}, "clinic day"),
        ({"clinic_days": (True, 2)}, "clinic day"),
        ({"clinic_days": "0123"}, "clinic_days must be weekday numbers"),
        ({"clinic_days": 3}, "clinic_days must be weekday numbers"),
    ],
)
def test_bad_arguments(kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(InvalidInput, match=match):
        plan_course("iv_ketamine_induction", MONDAY, **kwargs)  # type: ignore[arg-type]


def test_weeks_limit_for_open_ended_protocols() -> None:
    assert len(plan_course("esketamine_trd", MONDAY, weeks=MAX_PLAN_WEEKS)) == 8 + 4 + 74
    with pytest.raises(InvalidInput, match=f"at most {MAX_PLAN_WEEKS}"):
        plan_course("esketamine_trd", MONDAY, weeks=MAX_PLAN_WEEKS + 1)


def test_mdsi_cannot_be_planned_beyond_4_weeks() -> None:
    with pytest.raises(InvalidInput, match="at most 4"):
        plan_course("esketamine_mdsi", MONDAY, weeks=5)


@pytest.mark.parametrize("start", [datetime(2025, 3, 3, 9, 0), "2025-03-03", None])
def test_start_must_be_a_date(start: object) -> None:
    with pytest.raises(InvalidInput, match="start must be a date"):
        plan_course("iv_ketamine_induction", start)  # type: ignore[arg-type]


@pytest.mark.parametrize("code", ["ketamine", "", None, 3])
def test_unknown_protocol(code: object) -> None:
    with pytest.raises(InvalidInput, match="unknown protocol"):
        plan_course(code, MONDAY)  # type: ignore[arg-type]


# ---------------------------------------------------------------- custom protocols


def _protocol(**overrides: object) -> Protocol:
    fields: dict[str, object] = {
        "code": "custom",
        "title": "Custom",
        "treatment": "iv_ketamine",
        "route": "iv",
        "phases": (Phase("induction", 1, 2, 2), Phase("maintenance", 3, None, 1)),
        "default_weeks": 4,
        "source": "clinic convention [U]",
    }
    fields.update(overrides)
    return Protocol(**fields)  # type: ignore[arg-type]


def test_a_clinic_protocol_object_can_be_planned() -> None:
    plan = plan_course(_protocol(), MONDAY)
    assert [s.phase for s in plan] == ["induction"] * 4 + ["maintenance"] * 2


def test_a_plan_shorter_than_its_first_block_is_empty() -> None:
    fortnightly = _protocol(phases=(Phase("maintenance", 1, None, 1, block_weeks=2),))
    assert plan_course(fortnightly, MONDAY, weeks=1) == []
    assert len(plan_course(fortnightly, MONDAY, weeks=2)) == 1


@pytest.mark.parametrize(
    ("overrides", "match"),
    [
        ({"phases": ()}, "at least one phase"),
        ({"phases": (Phase("a", 2, 3, 1),)}, "follow on week by week"),
        ({"phases": (Phase("a", 1, 2, 1), Phase("b", 4, 5, 1))}, "follow on week by week"),
        ({"phases": (Phase("a", 1, None, 1), Phase("b", 2, 3, 1))}, "only the last phase"),
        ({"default_weeks": 0}, "default_weeks must be at least 1"),
        ({"phases": (Phase("a", 1, 2, 1),), "default_weeks": 3}, "default_weeks must be at most 2"),
        ({"treatment": "ect"}, "unknown treatment"),
    ],
)
def test_protocol_definitions_are_validated(overrides: dict[str, object], match: str) -> None:
    with pytest.raises(InvalidInput, match=match):
        _protocol(**overrides)


@pytest.mark.parametrize(
    ("args", "match"),
    [
        (("a", 0, 1, 1), "first_week must be at least 1"),
        (("a", 3, 2, 1), "last_week must be at least 3"),
        (("a", 1, 2, 4), "sessions_per_block must be at most 3"),
        (("a", 1, 2, 0), "sessions_per_block must be at least 1"),
    ],
)
def test_phase_definitions_are_validated(args: tuple[object, ...], match: str) -> None:
    with pytest.raises(InvalidInput, match=match):
        Phase(*args)  # type: ignore[arg-type]


def test_phase_block_weeks_must_be_positive() -> None:
    with pytest.raises(InvalidInput, match="block_weeks must be at least 1"):
        Phase("a", 1, 2, 1, block_weeks=0)


# ---------------------------------------------------------------- properties

starts = st.dates(min_value=date(2024, 1, 1), max_value=date(2032, 12, 31))
clinic_day_sets = st.frozensets(st.integers(0, 6), min_size=1)


@hsettings(database=None, max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(
    code=st.sampled_from(sorted(SPEC)),
    start=starts,
    clinic=clinic_day_sets,
    extra_weeks=st.integers(0, 20),
)
def test_property_plans_never_break_the_rules(
    code: str, start: date, clinic: frozenset[int], extra_weeks: int
) -> None:
    weeks = DEFAULT_WEEKS[code] + (extra_weeks if code == "esketamine_trd" else 0)
    if feasible(code, weeks, start, clinic):
        event("feasible")
        plan = plan_course(code, start, weeks=weeks, clinic_days=sorted(clinic))
        check_plan(code, weeks, start, clinic, plan)
        if code.startswith("iv_ketamine_induction"):
            assert len(plan) == 6
            assert all(0 <= (s.date - start).days < 21 for s in plan)
    else:
        event("infeasible")
        with pytest.raises(InvalidInput, match="cannot hold"):
            plan_course(code, start, weeks=weeks, clinic_days=sorted(clinic))


@hsettings(database=None, max_examples=200)
@given(start=starts)
def test_property_default_clinic_week_always_fits_iv_induction(start: date) -> None:
    for code in ("iv_ketamine_induction", "iv_ketamine_induction_3x_weekly"):
        plan = plan_course(code, start)
        assert len(plan) == 6
        assert all(0 <= (s.date - start).days <= 20 and s.date.weekday() < 5 for s in plan)
        check_plan(code, DEFAULT_WEEKS[code], start, frozenset(range(5)), plan)
