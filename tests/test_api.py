"""The JSON API as a whole (security.md R17, R29): schema, docs, auth modes, pagination, errors.

Per-route permissions are in test_authz_matrix.py; patient field validation in test_patients.py.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.test import Client

from ketaclinic.accounts import services as account_services
from ketaclinic.audit.models import AuditEvent
from ketaclinic.patients import selectors
from ketaclinic.patients.models import Patient
from tests.conftest import World, login
from tests.factories import PatientFactory
from tests.routes import api_operations

API = "/api/v1/patients"


def bearer_client(world: World, persona: str) -> Client:
    _, raw = account_services.api_token_create(actor=world.users[persona], name="t", days=5)
    return Client(headers={"Authorization": f"Bearer {raw}"})


def assert_error_format(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"detail", "errors"}
    assert isinstance(body["detail"], str) and body["detail"]
    assert isinstance(body["errors"], dict)
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in body["errors"].items())
    return body


# --- Schema and docs ----------------------------------------------------------------------------


def test_openapi_schema_describes_the_patient_operations(world: World, client_for: Any) -> None:
    response = client_for("nurse").get("/api/v1/openapi.json")
    assert response.status_code == 200
    schema = response.json()
    assert schema["info"]["title"] == "KetaClinic API"
    operations = {(m.upper(), p) for p, ms in schema["paths"].items() for m in ms}
    assert {
        ("GET", API),
        ("POST", API),
        ("GET", API + "/{patient_id}"),
        ("PATCH", API + "/{patient_id}"),
    } <= operations
    assert len(operations) == len(api_operations())
    assert schema["components"]["securitySchemes"]["TokenAuth"] == {
        "type": "http",
        "scheme": "bearer",
    }
    create = schema["paths"][API]["post"]
    assert "201" in create["responses"]
    patient_create = schema["components"]["schemas"]["PatientCreate"]
    assert set(patient_create["required"]) == {
        "clinic_id",
        "first_name",
        "last_name",
        "date_of_birth",
    }
    assert patient_create["additionalProperties"] is False


def test_docs_page_is_for_signed_in_users(world: World, client_for: Any) -> None:
    page = client_for("nurse").get("/api/v1/docs")
    assert page.status_code == 200
    assert "swagger-ui" in page.content.decode()
    anonymous = Client().get("/api/v1/docs")
    assert anonymous.status_code == 302
    assert anonymous["Location"] == "/accounts/login/?next=/api/v1/docs"
    assert Client().get("/api/v1/openapi.json").status_code == 302


# --- Authentication modes -------------------------------------------------------------------------


def test_bearer_token_and_verified_session_see_the_same_patients(
    world: World, client_for: Any
) -> None:
    by_token = bearer_client(world, "nurse").get(API).json()
    by_session = client_for("nurse").get(API).json()
    assert by_token == by_session
    assert {p["id"] for p in by_token["items"]} == {world.patient_a.pk, world.patient_a2.pk}


def test_session_writes_need_the_csrf_token_but_token_writes_do_not(world: World) -> None:
    payload = {
        "clinic_id": world.clinic_a.pk,
        "first_name": "Cy",
        "last_name": "Surf",
        "date_of_birth": "1991-07-01",
    }
    browser = login(Client(enforce_csrf_checks=True), world.users["nurse"])
    forged = browser.post(API, payload, content_type="application/json")
    assert_error_format(forged, 403)
    assert not Patient.objects.filter(last_name="Surf").exists()

    browser.get("/patients/")  # a page sets the CSRF cookie, as in the browser
    csrf = browser.cookies["csrftoken"].value
    ok = browser.post(API, payload, content_type="application/json", headers={"X-CSRFToken": csrf})
    assert ok.status_code == 201

    script = bearer_client(world, "nurse")
    script.cookies.clear()
    again = script.post(API, {**payload, "first_name": "Di"}, content_type="application/json")
    assert again.status_code == 201
    assert Patient.objects.filter(last_name="Surf").count() == 2


# --- Listing ------------------------------------------------------------------------------------


def test_list_is_paginated_and_ordered_by_name(world: World, client_for: Any) -> None:
    for last in ["Zeller", "Young", "Xu", "Walsh"]:
        PatientFactory(clinic=world.clinic_a, last_name=last)
    client = client_for("nurse")
    everyone = client.get(API).json()
    names = [p["last_name"] for p in everyone["items"]]
    assert names == ["Abbott", "Baker", "Walsh", "Xu", "Young", "Zeller"]
    assert everyone["count"] == 6
    page = client.get(f"{API}?limit=2&offset=2").json()
    assert [p["last_name"] for p in page["items"]] == ["Walsh", "Xu"]
    assert page["count"] == 6
    beyond = client.get(f"{API}?limit=2&offset=50").json()
    assert beyond == {"items": [], "count": 6}


def test_list_and_get_return_the_documented_fields(world: World, client_for: Any) -> None:
    client = client_for("nurse")
    item = client.get(API).json()["items"][0]
    one = client.get(f"{API}/{item['id']}").json()
    assert item == one
    assert set(one) == {
        "id",
        "clinic_id",
        "mrn",
        "first_name",
        "last_name",
        "preferred_name",
        "date_of_birth",
        "sex_at_birth",
        "pronouns",
        "phone",
        "email",
        "address_line1",
        "address_line2",
        "city",
        "state",
        "postal_code",
        "emergency_contact_name",
        "emergency_contact_relationship",
        "emergency_contact_phone",
        "created_at",
        "updated_at",
    }
    assert "organisation" not in json.dumps(one) and "user" not in one


def test_list_is_audited_once_per_request(world: World, client_for: Any) -> None:
    client = client_for("auditor")
    since = AuditEvent.objects.count()
    client.get(f"{API}?q=abb&limit=1")
    events = list(AuditEvent.objects.order_by("seq"))[since:]
    assert [(e.action, e.user_id) for e in events] == [("list", world.users["auditor"].pk)]
    assert "text=abb" in events[0].detail


# --- One error format, never a traceback ----------------------------------------------------------


def test_every_refusal_uses_the_one_error_format(world: World, client_for: Any) -> None:
    nurse = client_for("nurse")
    assert_error_format(Client().get(API), 401)
    assert_error_format(client_for("patient").get(API), 403)
    assert_error_format(nurse.get(f"{API}/{world.patient_b.pk}"), 404)
    assert_error_format(nurse.get(f"{API}/99999999"), 404)
    assert_error_format(nurse.get("/api/v1/no-such-endpoint"), 404)
    assert_error_format(nurse.get(f"{API}/not-a-number"), 422)
    body = assert_error_format(nurse.get(f"{API}?date_of_birth=yesterday"), 422)
    assert "date_of_birth" in body["errors"]
    assert_error_format(
        nurse.post(API, "first_name=x", content_type="application/x-www-form-urlencoded"), 400
    )


def test_another_clinics_patient_looks_exactly_like_a_missing_one(
    world: World, client_for: Any
) -> None:
    nurse = client_for("nurse")
    other = nurse.get(f"{API}/{world.patient_b.pk}")
    missing = nurse.get(f"{API}/99999999")
    assert other.status_code == missing.status_code == 404
    assert other.json() == missing.json()
    patch_other = nurse.patch(
        f"{API}/{world.patient_b.pk}", {"phone": "1"}, content_type="application/json"
    )
    assert patch_other.json() == missing.json()
    assert "Carter" not in other.content.decode()


def test_oversized_body_is_refused_not_crashed(world: World, client_for: Any) -> None:
    before = Patient.objects.count()
    huge = json.dumps(
        {
            "clinic_id": world.clinic_a.pk,
            "first_name": "x" * 3_000_000,
            "last_name": "Big",
            "date_of_birth": "1990-01-01",
        }
    )
    response = client_for("nurse").post(API, huge, content_type="application/json")
    assert_error_format(response, 413)
    assert Patient.objects.count() == before


@pytest.mark.parametrize("method", ["DELETE", "PUT"])
def test_unsupported_methods_are_refused_and_change_nothing(
    world: World, client_for: Any, method: str
) -> None:
    response = client_for("clinic_admin").generic(
        method, f"{API}/{world.patient_a2.pk}", "{}", content_type="application/json"
    )
    assert response.status_code == 405
    assert Patient.objects.filter(pk=world.patient_a2.pk).exists()


def test_unexpected_errors_answer_500_without_traceback_or_phi(
    world: World, client_for: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    def explode(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError(
            f"boom while reading {world.patient_a2.last_name} {world.patient_a2.mrn}"
        )

    monkeypatch.setattr(selectors, "patient_search", explode)
    client = client_for("nurse")
    client.raise_request_exception = False
    response = client.get(API)
    body = assert_error_format(response, 500)
    assert body["detail"] == f"Internal error. Quote request id {response['X-Request-ID']}"
    text = response.content.decode()
    for leak in (
        "Traceback",
        "RuntimeError",
        "boom",
        world.patient_a2.last_name,
        world.patient_a2.mrn,
        'File "',
    ):
        assert leak not in text


# --- The token query brings the user's memberships along ---------------------------------------


def test_a_token_brings_exactly_the_active_memberships_in_one_query(world: World) -> None:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from ketaclinic.accounts import access
    from ketaclinic.accounts.models import Membership, User
    from tests.factories import ClinicFactory, MembershipFactory

    nurse = world.users["nurse"]
    MembershipFactory(user=nurse, clinic=world.clinic_b, role="clinic_admin")
    clinic_c = ClinicFactory(organisation=world.org, name="Clinic C", slug="c")
    MembershipFactory(user=nurse, clinic=clinic_c, role="prescriber", is_active=False)
    _, raw = account_services.api_token_create(actor=nurse, name="t", days=5)
    account_services.api_token_user(raw)  # notes first use (a write, at most once a minute)
    with CaptureQueriesContext(connection) as queries:
        user = account_services.api_token_user(raw)
        assert user is not None
        carried = sorted(access._memberships(user))
    assert len(queries.captured_queries) == 1
    fresh = sorted(access._memberships(User.objects.get(pk=nurse.pk)))
    assert carried == fresh
    assert carried == sorted([(world.clinic_a.pk, "nurse"), (world.clinic_b.pk, "clinic_admin")])
    assert access.organisation_of(user, world.clinic_b.pk) == world.org.pk
    assert access.organisation_of(user, clinic_c.pk) is None  # inactive there
    assert access.clinic_ids_for(user, "patient.view") == sorted(
        [world.clinic_a.pk, world.clinic_b.pk]
    )

    loner = world.users["auditor"]
    Membership.objects.filter(user=loner).update(is_active=False)
    _, raw = account_services.api_token_create(actor=loner, name="t", days=5)
    user = account_services.api_token_user(raw)
    assert user is not None and access._memberships(user) == []
    assert bearer_client(world, "auditor").get(API).status_code in (403, 404)
