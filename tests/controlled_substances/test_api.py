"""/api/v1/controlled-substances: the same rules, roles and audit as the pages, JSON errors."""

from __future__ import annotations

import json
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
from django.contrib.auth.hashers import make_password
from django.test import Client

from ketaclinic.accounts import services as account_services
from ketaclinic.audit.models import AuditEvent
from ketaclinic.controlled_substances.models import Balance, Investigation, LedgerEntry
from tests.conftest import ALL_PERSONAS
from tests.controlled_substances.conftest import PASSWORD, SUPPLIER, Ledger
from tests.factories import MembershipFactory, UserFactory

API = "/api/v1/controlled-substances"
D = Decimal


def post(client: Client, path: str, body: dict[str, Any], **headers: str) -> Any:
    return client.post(
        f"{API}{path}", json.dumps(body), content_type="application/json", headers=headers
    )


def administration(lg: Ledger, lot_id: int, **changes: Any) -> dict[str, Any]:
    body = {
        "location_id": lg.safe.pk,
        "lot_id": lot_id,
        "patient_id": lg.patient.pk,
        "dose_mg": "40",
        "waste_mg": "460",
        "session_id": 12,
        "witness": {"user_id": lg.user("prescriber").pk, "password": PASSWORD},
    }
    body.update(changes)
    return body


def test_administration_through_the_api(lg: Ledger, client_for: Callable[..., Client]) -> None:
    lot = lg.receive(containers=1)
    response = post(
        client_for("nurse"), f"/clinics/{lg.clinic.pk}/administrations", administration(lg, lot.pk)
    )
    assert response.status_code == 201, response.content
    data = response.json()
    assert data["dispensed_mg"] == "500.000"
    assert data["administration"]["quantity_mg"] == "-40.000"
    assert data["administration"]["treatment_session_id"] == 12
    assert data["waste"]["witnesses"][0]["name"] == lg.user("prescriber").signature_name
    assert data["waste"]["witnesses"][0]["meaning"] == "witnessed_waste"
    assert data["waste"]["related_entry_seq"] == data["administration"]["seq"]
    events = AuditEvent.objects.filter(
        object_type="controlled_substances.ledgerentry", patient_id=lg.patient.pk
    )
    assert events.count() == 2


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"dose_mg": "600"}, "dose_mg"),
        ({"witness": {"user_id": 0, "password": "x"}}, "witness"),
        ({"witness": None}, "witness"),
        ({"patient_id": 0}, "patient_id"),
        ({"location_id": 0}, "location_id"),
        ({"dose_mg": "abc"}, "dose_mg"),
        ({"unexpected": 1}, "unexpected"),
    ],
)
def test_refusals_are_422_with_the_field_and_change_nothing(
    lg: Ledger, client_for: Callable[..., Client], changes: dict[str, Any], field: str
) -> None:
    lot = lg.receive(containers=1)
    if "witness" in changes and changes["witness"]:
        changes["witness"]["user_id"] = changes["witness"]["user_id"] or 999999
    response = post(
        client_for("nurse"),
        f"/clinics/{lg.clinic.pk}/administrations",
        administration(lg, lot.pk, **changes),
    )
    assert response.status_code == 422, response.content
    assert field in response.json()["errors"], response.json()
    assert LedgerEntry.objects.count() == 1
    assert Balance.objects.get().quantity_mg == D("500")


def test_a_wrong_witness_password_is_a_field_error(lg: Ledger, client_for) -> None:
    lot = lg.receive(containers=1)
    body = administration(
        lg, lot.pk, witness={"user_id": lg.user("prescriber").pk, "password": "nope"}
    )
    response = post(client_for("nurse"), f"/clinics/{lg.clinic.pk}/administrations", body)
    assert response.status_code == 422
    assert response.json()["errors"] == {"witness_password": "The witness password is incorrect."}


def test_personal_access_tokens_work_and_keep_the_role_checks(lg: Ledger) -> None:
    lot = lg.receive(containers=1)
    _, nurse_token = account_services.api_token_create(actor=lg.user("nurse"), name="t", days=1)
    _, auditor_token = account_services.api_token_create(actor=lg.user("auditor"), name="t", days=1)
    path = f"/clinics/{lg.clinic.pk}/administrations"
    ok = post(Client(), path, administration(lg, lot.pk), Authorization=f"Bearer {nurse_token}")
    assert ok.status_code == 201
    refused = post(
        Client(), path, administration(lg, lot.pk), Authorization=f"Bearer {auditor_token}"
    )
    assert refused.status_code == 403
    listing = Client().get(
        f"{API}/clinics/{lg.clinic.pk}/entries?kind=waste",
        headers={"Authorization": f"Bearer {auditor_token}"},
    )
    assert [e["kind"] for e in listing.json()["items"]] == ["waste"]


def _operations(lg: Ledger, lot_id: int) -> list[tuple[str, str, str, dict[str, Any] | None]]:
    c = lg.clinic.pk
    entry = LedgerEntry.objects.filter(kind="receive").first().seq
    inv = Investigation.objects.get().pk
    # A colleague who never signs in during the test, so has no authenticator to prompt for.
    colleague = UserFactory(username="witness_a", password=make_password(PASSWORD))
    MembershipFactory(user=colleague, clinic=lg.clinic, role="nurse")
    witness = admin_witness = {"user_id": colleague.pk, "password": PASSWORD}
    return [
        ("GET", "/products", "cs.view", None),
        ("GET", f"/clinics/{c}/balances", "cs.view", None),
        ("GET", f"/clinics/{c}/entries", "cs.view", None),
        ("GET", f"/clinics/{c}/entries/{entry}", "cs.view", None),
        ("GET", f"/clinics/{c}/locations", "cs.view", None),
        ("GET", f"/clinics/{c}/lots", "cs.view", None),
        ("GET", f"/clinics/{c}/counts", "cs.view", None),
        ("GET", f"/clinics/{c}/investigations", "cs.report", None),
        ("GET", f"/clinics/{c}/investigations/{inv}", "cs.report", None),
        ("GET", f"/clinics/{c}/deadlines", "cs.report", None),
        ("GET", f"/clinics/{c}/reports/administrations", "cs.report", None),
        (
            "POST",
            f"/clinics/{c}/receipts",
            "cs.stock",
            {
                "location_id": lg.safe.pk,
                "product_id": lg.vial50.pk,
                "lot_number": "API1",
                "expires_on": "2099-01-01",
                "containers": 1,
                **SUPPLIER,
            },
        ),
        (
            "POST",
            f"/clinics/{c}/wastes",
            "cs.record",
            {
                "location_id": lg.safe.pk,
                "lot_id": lot_id,
                "waste_mg": "1",
                "reason": "drawn up",
                "witness": admin_witness,
            },
        ),
        (
            "POST",
            f"/clinics/{c}/transfers",
            "cs.stock",
            {
                "from_location_id": lg.safe.pk,
                "to_location_id": lg.cart.pk,
                "lot_id": lot_id,
                "quantity_mg": "1",
            },
        ),
        (
            "POST",
            f"/clinics/{c}/adjustments",
            "cs.manage",
            {
                "location_id": lg.safe.pk,
                "lot_id": lot_id,
                "quantity_mg": "-1",
                "reason": "x",
                "witness": witness,
            },
        ),
        ("POST", f"/clinics/{c}/locations", "cs.manage", {"name": "Fridge", "kind": "safe"}),
        (
            "POST",
            f"/clinics/{c}/investigations",
            "cs.manage",
            {"kind": "theft", "description": "Reported by staff"},
        ),
    ]


ROLES = {
    "cs.view": {"prescriber", "nurse", "clinic_admin", "auditor"},
    "cs.record": {"prescriber", "nurse"},
    "cs.stock": {"prescriber", "nurse", "clinic_admin"},
    "cs.manage": {"clinic_admin"},
    "cs.report": {"clinic_admin", "auditor"},
}


def _expected(persona: str, permission: str, path: str) -> int:
    if persona == "anonymous":
        return 401
    if persona in ROLES[permission]:
        return 200
    holds_elsewhere = persona == "other_clinic_nurse" and permission in {
        "cs.view",
        "cs.record",
        "cs.stock",
    }
    if holds_elsewhere and path != "/products":
        return 404
    return 200 if holds_elsewhere else 403


def test_every_operation_answers_each_persona_as_declared(
    lg: Ledger, client_for: Callable[..., Client]
) -> None:
    lot = lg.receive(containers=4)
    from ketaclinic.controlled_substances import services
    from tests.controlled_substances.conftest import attest

    services.count_record(
        actor=lg.user("nurse"),
        clinic=lg.clinic,
        location=lg.safe,
        purpose="shift",
        lines=[services.CountLineInput(lot, 3)],
        second_counter=attest(lg.user("prescriber")),
    )
    failures = []
    operations = _operations(lg, lot.pk)
    for persona in ALL_PERSONAS:
        client = client_for(persona)
        for method, path, permission, body in operations:
            before = (LedgerEntry.objects.count(), AuditEvent.objects.count())
            if method == "GET":
                response = client.get(f"{API}{path}")
            else:
                response = post(client, path, body or {})
            want = _expected(persona, permission, path)
            got = response.status_code
            if want == 200 and method == "POST":
                want = 201
            if got != want:
                failures.append(f"{persona} {method} {path}: {got} (expected {want})")
            if got >= 400:
                assert LedgerEntry.objects.count() == before[0]
    assert failures == []


def test_another_clinic_is_404_in_the_api(lg: Ledger, client_for) -> None:
    admin = client_for("clinic_admin")
    for path in (
        f"/clinics/{lg.world.clinic_b.pk}/balances",
        "/clinics/999999/entries",
        f"/clinics/{lg.clinic.pk}/entries/999999",
        f"/clinics/{lg.clinic.pk}/reports/nonsense",
    ):
        response = admin.get(f"{API}{path}")
        assert response.status_code == 404, path
        assert response.json() == {"detail": "Not found.", "errors": {}}
