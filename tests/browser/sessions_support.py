"""Shared steps of the treatment-session browser tests (issue 6): a clock the test moves (the
live server runs in this process, so time_machine moves its clock too), a second nurse, stock.

The session pages take the time from the server (`core.clock`), so jumping 40 minutes ahead
is seen by the next request; staff stay signed in across the jumps (idle timeout raised).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from typing import Any

import pytest
import time_machine
from playwright.sync_api import Locator, Page, expect

from ketaclinic.accounts.choices import Role
from ketaclinic.controlled_substances import services as cs_services
from ketaclinic.controlled_substances.choices import LocationKind, ProductForm, Substance
from ketaclinic.controlled_substances.models import Lot, Product, StorageLocation
from tests.factories import MembershipFactory, UserFactory
from tests.screening.builders import NOW


@pytest.fixture
def session_clock(settings: Any) -> Iterator[Any]:
    """Monday 2 March 2026, noon in Boston, ticking; the test jumps it forward."""
    settings.KETACLINIC_IDLE_TIMEOUT_MINUTES = 600
    with time_machine.travel(NOW, tick=True) as traveller:
        yield traveller


def second_nurse(world: Any) -> Any:
    """A second nurse of clinic A (password only, no authenticator): checks and witnesses."""
    user = UserFactory(username="nurse2_a", first_name="Robin", last_name="Second")
    MembershipFactory(user=user, clinic=world.clinic_a, role=Role.NURSE)
    return user


def with_address(patient: Any) -> Any:
    """The DEA administration record needs the patient's address."""
    patient.address_line1, patient.city, patient.state = "12 Elm St", "Boston", "MA"
    patient.save()
    return patient


def stock(world: Any, *, esketamine: bool, lot_number: str) -> Lot:
    clinic, admin = world.clinic_a, world.users["clinic_admin"]
    if esketamine:
        product = Product.objects.create(
            ndc="22222-028-02", name="Spravato", substance=Substance.ESKETAMINE,
            form=ProductForm.NASAL_DEVICE, mg_per_container=28, containers_per_package=2,
        )  # fmt: skip
    else:
        product = Product.objects.create(
            ndc="11111-222-20", name="Ketamine HCl", substance=Substance.KETAMINE,
            form=ProductForm.VIAL, mg_per_ml=10, ml_per_container=20, mg_per_container=200,
        )  # fmt: skip
    safe = StorageLocation.objects.create(clinic=clinic, name="Main safe", kind=LocationKind.SAFE)
    entry = cs_services.receipt_record(
        actor=admin, clinic=clinic, location=safe, product=product, lot_number=lot_number,
        expires_on=date(2099, 1, 31), containers=2, supplier_name="Cardinal Health",
        supplier_address="7000 Cardinal Pl, Dublin, OH", supplier_dea_number="RC0123454",
        invoice_number="INV-7",
    )  # fmt: skip
    return entry.lot


def submit(page: Page, locator: Locator) -> None:
    """Click and wait for the next page to load completely (styles and scripts included), so
    the next step cannot abort its sub-resources by navigating away too early."""
    with page.expect_navigation(wait_until="load"):
        locator.click()


def press(page: Page, testid: str) -> None:
    submit(page, page.get_by_test_id(testid))


def record_vitals(page: Page, systolic: int, diastolic: int, *, moaas: int | None = None) -> None:
    form = page.get_by_test_id("vitals-form")
    form.get_by_label("Systolic (mmHg)").fill(str(systolic))
    form.get_by_label("Diastolic (mmHg)").fill(str(diastolic))
    form.get_by_label("HR (/min)").fill("74")
    form.get_by_label("SpO₂ (%)").fill("98")
    form.get_by_label("RR (/min)").fill("14")
    if moaas is not None:
        form.get_by_label("MOAA/S (0-5)").fill(str(moaas))
    submit(page, form.get_by_role("button", name="Record vital signs"))
    expect(page.get_by_role("status").first).to_contain_text("Vital signs recorded")


def assess_discharge(page: Page, escort: str) -> None:
    form = page.get_by_test_id("discharge-form")
    for label in (
        "Sedation resolved", "Dissociation resolved", "No respiratory depression",
        "Vital signs acceptable", "Escort present",
    ):  # fmt: skip
        form.get_by_label(label).check()
    form.get_by_label("Escort's name").fill(escort)
    submit(page, form.get_by_role("button", name="Assess discharge criteria"))


def status(page: Page, text: str) -> None:
    expect(page.get_by_test_id("session-status")).to_have_text(text)
