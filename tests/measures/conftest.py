"""Fixtures for measurement-based care: a frozen clock, plans and an enrolled patient."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import pytest
import time_machine

from ketaclinic.core import sms
from tests.conftest import World
from tests.measures import factories

# A Monday morning in Boston (clinic A's time zone is America/New_York): 13:00 UTC = 09:00 EDT.
MONDAY = date(2026, 6, 1)
MONDAY_9AM = datetime(2026, 6, 1, 13, 0, tzinfo=UTC)


@pytest.fixture
def clock() -> Any:
    """Time stands still at MONDAY 09:00 clinic time until the test moves it."""
    with time_machine.travel(MONDAY_9AM, tick=False) as traveller:
        yield traveller


@pytest.fixture
def sms_outbox(settings: Any) -> list[sms.TextMessage]:
    settings.KETACLINIC_SMS_BACKEND = "ketaclinic.core.sms.LocmemSmsBackend"
    sms.outbox.clear()
    return sms.outbox


@pytest.fixture
def phq9_weekly_plan(world: World) -> Any:
    return factories.plan_with(world.users["prescriber"], world.clinic_a, factories.WEEKLY_PHQ9)


@pytest.fixture
def enrolled(world: World, phq9_weekly_plan: Any, clock: Any) -> Any:
    """patient_a on an IV induction starting today, alerts to the clinic-A prescriber."""
    return factories.enrol(
        world.users["prescriber"],
        world.patient_a,
        phq9_weekly_plan,
        first_session_on=MONDAY,
        prescriber=world.users["prescriber"],
    )
