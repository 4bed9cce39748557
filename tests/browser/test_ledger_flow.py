"""Issue 4: a nurse administers 40 mg from a 50 mg/mL vial and wastes the remainder with a witness
who signs on the same screen; the clinic administrator then sees the balance and the log line."""

from __future__ import annotations

import re
from datetime import date
from decimal import Decimal

import pytest
from django_otp.plugins.otp_totp.models import TOTPDevice
from playwright.sync_api import Page, expect

from ketaclinic.controlled_substances import services
from ketaclinic.controlled_substances.choices import LocationKind, ProductForm, Substance
from ketaclinic.controlled_substances.models import LedgerEntry, Product, StorageLocation
from tests.browser.conftest import totp_code
from tests.factories import PASSWORD

pytestmark = pytest.mark.browser


def test_nurse_administers_and_wastes_with_a_witness_admin_sees_balance_and_log(
    page: Page, sign_in, screenshot, world, live_server
) -> None:
    nurse, witness, admin = (world.users[p] for p in ("nurse", "prescriber", "clinic_admin"))
    clinic, patient = world.clinic_a, world.patient_a2
    patient.address_line1, patient.city, patient.state = "12 Elm St", "Boston", "MA"
    patient.save()
    vial = Product.objects.create(
        ndc="11111-150-10",
        name="Ketamine HCl",
        substance=Substance.KETAMINE,
        form=ProductForm.VIAL,
        mg_per_ml=50,
        ml_per_container=10,
        mg_per_container=500,
    )
    safe = StorageLocation.objects.create(clinic=clinic, name="Main safe", kind=LocationKind.SAFE)
    services.receipt_record(
        actor=admin,
        clinic=clinic,
        location=safe,
        product=vial,
        lot_number="K50-1",
        expires_on=date(2099, 1, 31),
        containers=2,
        supplier_name="Cardinal Health",
        supplier_address="7000 Cardinal Pl, Dublin, OH",
        supplier_dea_number="RC0123454",
        invoice_number="INV-7",
    )
    witness_phone = TOTPDevice.objects.create(user=witness, name="phone", confirmed=True)

    sign_in(page, nurse)
    page.get_by_role("link", name="Controlled substances").click()
    page.get_by_role("button", name="Administer").first.click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Administer and waste")
    page.get_by_label("Stock (location · product · lot)").select_option(index=1)
    page.get_by_label("Patient MRN").fill(patient.mrn)
    with page.expect_response(lambda r: "/administer/preview/" in r.url and "dose=40" in r.url):
        page.get_by_label("Dose given").fill("40")
    preview = page.locator("#administer-preview")
    expect(preview).to_contain_text(f"{patient.last_name}, {patient.first_name}")
    expect(preview).to_contain_text("dose 40 mg, waste 460 mg")
    expect(page.get_by_label("Waste the rest of the opened vial(s)")).to_be_checked()
    page.get_by_label("Witness:", exact=True).select_option(label=witness.signature_name)
    page.get_by_label("Witness password").fill(PASSWORD)
    page.get_by_label("Witness authenticator code").fill(totp_code(witness_phone))
    screenshot(page, "ledger-administer")
    page.get_by_role("button", name="Record administration").click()

    expect(page).to_have_url(re.compile(r"/controlled-substances/\d+/ledger/\d+/$"))
    expect(page.get_by_role("status").first).to_contain_text(
        f"Administered 40 mg to {patient.full_name}; wasted 460 mg."
    )
    dose = LedgerEntry.objects.get(kind="administer")
    waste = LedgerEntry.objects.get(kind="waste")
    assert (dose.quantity_mg, dose.volume_ml, dose.actor_id) == (
        Decimal("-40"),
        Decimal("-0.8"),
        nurse.pk,
    )
    assert (waste.quantity_mg, waste.witness_id) == (Decimal("-460"), witness.pk)

    page.get_by_role("button", name="Sign out").click()
    sign_in(page, admin)
    page.goto(f"/controlled-substances/{clinic.pk}/")
    row = page.locator("#balances tbody tr")
    expect(row).to_have_count(1)
    expect(row).to_contain_text("K50-1")
    expect(row).to_contain_text("500.000")  # one vial of two left
    screenshot(page, "ledger-balances")

    page.get_by_role("link", name="Reports").first.click()
    page.get_by_role("link", name="Dispensing and administration log").click()
    line = page.locator("#report-rows tbody tr")
    expect(line).to_have_count(1)
    for text in (
        patient.full_name,
        "12 Elm St, Boston, MA",
        "injection 50 mg/mL, 10 mL vial",
        "40.000",
        "0.800",
        nurse.signature_name,
    ):
        expect(line).to_contain_text(text)
    expect(page.locator("#report-total")).to_have_text("40 mg")
    screenshot(page, "ledger-administration-log")
