"""Sign-in hardening (security.md R3-R5, R17): lockout, passwords, MFA, idle timeout, API tokens."""

from __future__ import annotations

import base64
import hashlib
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import time_machine
from django.conf import settings
from django.contrib.auth.hashers import get_hasher, identify_hasher
from django.contrib.auth.password_validation import validate_password
from django.contrib.sessions.models import Session
from django.core.exceptions import ValidationError
from django.test import Client, override_settings
from django_otp.oath import TOTP
from django_otp.plugins.otp_totp.models import TOTPDevice

from ketaclinic.accounts.models import ApiToken, User
from ketaclinic.audit.models import AuditEvent
from ketaclinic.patients.models import Patient
from tests.conftest import STAFF_PERSONAS, World, login, verified_device
from tests.factories import PASSWORD, UserFactory
from tests.routes import api_operation_routes, url_routes

T0 = datetime(2026, 3, 2, 14, 0, tzinfo=UTC)
LOGIN_URL = "/accounts/login/"


def sign_in(client: Client, username: str, password: str = PASSWORD) -> Any:
    return client.post(LOGIN_URL, {"username": username, "password": password})


def is_signed_in(client: Client) -> bool:
    return "_auth_user_id" in client.session


def totp_code(device: TOTPDevice, *, offset: int = 0) -> str:
    token = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift).token()
    return f"{(token + offset) % 10**device.digits:0{device.digits}d}"


def actions_for(username: str) -> list[str]:
    return list(AuditEvent.objects.filter(username=username).values_list("action", flat=True))


# --- Lockout (django-axes) --------------------------------------------------------------------


def test_lockout_after_the_failure_limit_refuses_even_the_right_password(world: World) -> None:
    limit = settings.AXES_FAILURE_LIMIT
    assert limit == 5
    client = Client()
    with time_machine.travel(T0, tick=False) as clock:
        for _ in range(limit - 1):
            response = sign_in(client, "nurse_a", "not the password at all")
            assert response.status_code == 200
            assert "correct username and password" in response.content.decode()
        locked = sign_in(client, "nurse_a", "not the password at all")
        assert locked.status_code == 429
        assert "Too many failed sign-ins" in locked.content.decode()

        refused = sign_in(client, "nurse_a", PASSWORD)
        assert refused.status_code == 429
        assert not is_signed_in(client)
        actions = actions_for("nurse_a")
        assert actions.count("login_failed") >= limit
        assert "lockout" in actions
        assert "login" not in actions
        lockout = AuditEvent.objects.filter(action="lockout", username="nurse_a").first()
        assert lockout is not None and lockout.source_ip == "127.0.0.1" and lockout.request_id

        # The lock is per account and address: a colleague at the same desk still signs in.
        colleague = Client()
        assert sign_in(colleague, "patient_a").status_code == 302
        assert is_signed_in(colleague)

        # After the cool-off the right password works again.
        clock.shift(settings.AXES_COOLOFF_TIME + timedelta(minutes=1))
        later = sign_in(client, "nurse_a", PASSWORD)
        assert later.status_code == 302
        assert is_signed_in(client)


# --- Passwords (NIST SP 800-63B) --------------------------------------------------------------


def test_password_rules_are_length_and_common_password_without_composition(world: World) -> None:
    user = world.users["nurse"]
    with pytest.raises(ValidationError) as short:
        validate_password("tiny pass", user)
    assert "password_too_short" in {e.code for e in short.value.error_list}
    with pytest.raises(ValidationError) as eleven:
        validate_password("elevenchars", user)
    assert "password_too_short" in {e.code for e in eleven.value.error_list}
    with pytest.raises(ValidationError) as common:
        validate_password("password1234", user)
    assert "password_too_common" in {e.code for e in common.value.error_list}
    # A long passphrase of lowercase words passes: no digit, capital or symbol is demanded.
    validate_password("tangerine lighthouse marmalade", user)
    validate_password("twelvelowercs", user)
    names = {v["NAME"].rsplit(".", 1)[1] for v in settings.AUTH_PASSWORD_VALIDATORS}
    assert names <= {
        "MinimumLengthValidator",
        "CommonPasswordValidator",
        "UserAttributeSimilarityValidator",
    }
    assert {"MinimumLengthValidator", "CommonPasswordValidator"} <= names


def test_passwords_are_stored_with_pbkdf2_or_argon2(world: World) -> None:
    assert get_hasher("default").algorithm in {"pbkdf2_sha256", "argon2"}
    user = User.objects.create_user("hash_check", password="tangerine lighthouse marmalade")
    stored = User.objects.get(pk=user.pk).password
    assert identify_hasher(stored).algorithm in {"pbkdf2_sha256", "argon2"}
    assert "tangerine" not in stored


# --- MFA enforcement ----------------------------------------------------------------------------

# Pages a signed-in staff member reaches before the TOTP step, by design.
MFA_STEP_PAGES = {"accounts:mfa_setup", "accounts:mfa_verify", "accounts:logout"}
# The API root only answers 404 (it exists so the API can compute its own URLs).
NOTHING_THERE = {"api:api-root"}
# htmx fragments swapped into a page that carries the banner; they are not pages themselves.
FRAGMENTS = {"treatment_sessions:board_rows"}


def _staff_page_paths(world: World) -> list[tuple[str, str]]:
    """Every page (not an API operation) with its object ids filled with clinic A objects."""
    operation_routes = api_operation_routes()
    token, _ = ApiToken.objects.get_or_create(
        user=world.users["nurse"],
        name="sweep",
        defaults={"token_digest": "0" * 64, "hint": "kc_", "expires_at": T0},
    )
    known = {
        "patient_id": world.patient_a2.pk,
        "token_id": token.pk,
        "clinic_id": world.clinic_a.pk,
    }
    paths = []
    for route in url_routes():
        if route.route in operation_routes or route.key in MFA_STEP_PAGES | NOTHING_THERE:
            continue
        paths.append((route.key, route.sample_path(known)))
    assert len(paths) >= 12
    return paths


@pytest.mark.parametrize("persona", STAFF_PERSONAS)
@pytest.mark.parametrize("has_device", [False, True], ids=["no-device", "device"])
def test_staff_reach_no_page_before_the_totp_step(
    world: World, persona: str, has_device: bool
) -> None:
    user = world.users[persona]
    if has_device:
        verified_device(user)
    client = login(Client(), user, mfa=False)
    target = "/accounts/mfa/verify/" if has_device else "/accounts/mfa/setup/"
    for key, path in _staff_page_paths(world):
        response = client.get(path)
        assert response.status_code == 302, key
        assert response["Location"].startswith(f"{target}?next="), (key, response["Location"])
    api = client.get("/api/v1/patients")
    assert api.status_code == 401
    assert Patient.objects.count() == 3


def test_unverified_staff_cannot_write_through_pages_or_api(world: World) -> None:
    client = login(Client(), world.users["nurse"], mfa=False)
    before = (Patient.objects.count(), AuditEvent.objects.count())
    page = client.post(
        "/patients/new/",
        {
            "clinic": world.clinic_a.pk,
            "first_name": "Una",
            "last_name": "Verified",
            "date_of_birth": "1990-01-01",
            "sex_at_birth": "female",
        },
    )
    assert page.status_code == 302 and page["Location"].startswith("/accounts/mfa/setup/")
    api = client.post(
        "/api/v1/patients",
        {
            "clinic_id": world.clinic_a.pk,
            "first_name": "Una",
            "last_name": "Verified",
            "date_of_birth": "1990-01-01",
        },
        content_type="application/json",
    )
    assert api.status_code == 401
    assert (Patient.objects.count(), AuditEvent.objects.count()) == before


def test_patients_are_not_forced_through_mfa(world: World) -> None:
    client = login(Client(), world.users["patient"], mfa=False)
    assert client.get("/")["Location"] == "/portal/"  # patients land on the portal
    assert client.get("/portal/").status_code == 200
    assert client.get("/accounts/profile/").status_code == 200
    # The API lets the session through authentication; the role then decides (403, not 401).
    assert client.get("/api/v1/patients").status_code == 403


def test_superuser_without_clinic_role_still_needs_mfa(world: World) -> None:
    admin = User.objects.create_superuser("root_admin", password="tangerine lighthouse marmalade")
    client = login(Client(), admin, mfa=False)
    response = client.get("/accounts/profile/")
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/mfa/setup/")


def test_staff_enrol_totp_through_the_pages(world: World) -> None:
    nurse = world.users["nurse"]
    client = Client()
    with time_machine.travel(T0, tick=False) as clock:
        assert sign_in(client, "nurse_a").status_code == 302
        first = client.get("/patients/")
        assert first["Location"] == "/accounts/mfa/setup/?next=%2Fpatients%2F"
        page = client.get(first["Location"])
        assert page.status_code == 200
        device = TOTPDevice.objects.get(user=nurse, confirmed=False)
        secret = base64.b32encode(device.bin_key).decode().rstrip("=")
        html = page.content.decode()
        assert secret in html
        assert 'src="data:image/svg+xml;base64,' in html

        wrong = client.post(
            first["Location"], {"code": totp_code(device, offset=1), "next": "/patients/"}
        )
        assert wrong.status_code == 200
        assert "That code did not match" in wrong.content.decode()
        device.refresh_from_db()
        assert not device.confirmed
        assert client.get("/patients/").status_code == 302
        assert "mfa_failed" in actions_for("nurse_a")

        clock.shift(timedelta(seconds=20))  # django-otp throttles retries after a failure
        right = client.post(first["Location"], {"code": totp_code(device), "next": "/patients/"})
        assert right.status_code == 302 and right["Location"] == "/patients/"
        device.refresh_from_db()
        assert device.confirmed
        assert client.get("/patients/").status_code == 200
        enrol = AuditEvent.objects.get(action="mfa_enrol")
        assert (enrol.user_id, enrol.object_id) == (nurse.pk, str(device.pk))


def test_enrolled_staff_sign_in_with_a_code(world: World) -> None:
    device = verified_device(world.users["prescriber"])
    client = Client()
    with time_machine.travel(T0, tick=False) as clock:
        assert sign_in(client, "prescriber_a").status_code == 302
        gate = client.get("/patients/")
        assert gate["Location"] == "/accounts/mfa/verify/?next=%2Fpatients%2F"
        wrong = client.post(
            gate["Location"], {"code": totp_code(device, offset=7), "next": "/patients/"}
        )
        assert wrong.status_code == 200
        assert "did not match" in wrong.content.decode()
        assert client.get("/patients/").status_code == 302
        clock.shift(timedelta(seconds=20))
        right = client.post(gate["Location"], {"code": totp_code(device), "next": "/patients/"})
        assert right.status_code == 302 and right["Location"] == "/patients/"
        assert client.get("/patients/").status_code == 200
        assert client.get("/api/v1/patients").status_code == 200
        # A used code cannot be replayed in another session.
        thief = Client()
        assert sign_in(thief, "prescriber_a").status_code == 302
        replay = thief.post(gate["Location"], {"code": totp_code(device), "next": "/patients/"})
        assert replay.status_code == 200
        assert thief.get("/patients/").status_code == 302


def test_a_password_alone_cannot_enrol_a_new_authenticator(world: World) -> None:
    """Whoever has only the password must not replace the owner's authenticator with theirs."""
    owner_device = verified_device(world.users["prescriber"])
    client = Client()
    assert sign_in(client, "prescriber_a").status_code == 302
    page = client.get("/accounts/mfa/setup/")
    assert page.status_code == 302
    assert page["Location"].startswith("/accounts/mfa/verify/")
    # Even posting a code for a device the attacker created does not get them in.
    attacker_device = TOTPDevice.objects.create(
        user=world.users["prescriber"], name="attacker", confirmed=False
    )
    client.post("/accounts/mfa/setup/", {"code": totp_code(attacker_device), "next": "/"})
    assert list(TOTPDevice.objects.filter(user=world.users["prescriber"], confirmed=True)) == [
        owner_device
    ]
    assert client.get("/patients/")["Location"].startswith("/accounts/mfa/verify/")
    assert "mfa_enrol" not in actions_for("prescriber_a")


def test_mfa_can_be_off_only_in_demo_mode(world: World) -> None:
    client = login(Client(), world.users["nurse"], mfa=False)
    with override_settings(KETACLINIC_REQUIRE_STAFF_MFA=False, DEMO_MODE=False):
        assert client.get("/patients/").status_code == 302
        assert client.get("/api/v1/patients").status_code == 401
    with override_settings(KETACLINIC_REQUIRE_STAFF_MFA=False, DEMO_MODE=True):
        assert client.get("/patients/").status_code == 200
        assert client.get("/api/v1/patients").status_code == 200


def _html_pages(world: World) -> list[tuple[str, str]]:
    return _staff_page_paths(world) + [
        ("accounts:mfa_setup", "/accounts/mfa/setup/"),
        ("accounts:mfa_verify", "/accounts/mfa/verify/"),
        ("not-found", "/no/such/page/"),
        ("forbidden-object", f"/patients/{world.patient_b.pk}/"),
    ]


@override_settings(KETACLINIC_REQUIRE_STAFF_MFA=False, DEMO_MODE=True)
def test_demo_mode_shows_its_banner_on_every_page(world: World) -> None:
    verified_device(world.users["clinic_admin"])
    staff = login(Client(), world.users["clinic_admin"], mfa=False)
    patient = login(Client(), world.users["patient"], mfa=False)
    seen = set()
    for client in (staff, patient, Client()):
        for key, path in _html_pages(world):
            response = client.get(path, follow=True)
            assert response.status_code < 500
            html = response.get("Content-Type", "").startswith("text/html")
            if not html or not response.content:  # JSON, CSV, an empty 405
                continue
            if key in FRAGMENTS and "<html" not in response.content.decode():
                continue  # a signed-in user's fragment; others reach the login page (a page)
            assert "Demo mode" in response.content.decode(), (key, path)
            seen.add(key)
    assert {
        "patients:list",
        "patients:chart",
        "patients:edit",
        "patients:create",
        "accounts:profile",
        "accounts:login",
        "audit:report",
        "core:home",
        "accounts:mfa_setup",
        "not-found",
    } <= seen


def test_no_demo_banner_outside_demo_mode(world: World, client_for: Any) -> None:
    assert "Demo mode" not in Client().get(LOGIN_URL).content.decode()
    assert "Demo mode" not in client_for("nurse").get("/patients/").content.decode()


# --- Idle timeout -------------------------------------------------------------------------------


def test_idle_timeout_signs_out_pages(world: World, client_for: Any) -> None:
    assert settings.KETACLINIC_IDLE_TIMEOUT_MINUTES == 15
    with time_machine.travel(T0, tick=False) as clock:
        client = client_for("nurse")
        assert client.get("/patients/").status_code == 200
        old_key = client.session.session_key
        clock.shift(timedelta(minutes=15, seconds=1))
        response = client.get(f"/patients/{world.patient_a2.pk}/")
        assert response.status_code == 302
        assert (
            response["Location"] == f"/accounts/login/?next=%2Fpatients%2F{world.patient_a2.pk}%2F"
        )
        assert not is_signed_in(client)
        assert not Session.objects.filter(session_key=old_key).exists()
        signed_out = client.get(response["Location"])
        assert "signed out after 15 minutes without activity" in signed_out.content.decode()
        again = client.get("/patients/")
        assert again.status_code == 302 and again["Location"].startswith(LOGIN_URL)
        timeout = AuditEvent.objects.filter(action="idle_timeout").get()
        assert timeout.user_id == world.users["nurse"].pk
        # The chart was not read, so no read was audited.
        assert not AuditEvent.objects.filter(action="read").exists()


def test_idle_timeout_answers_401_on_the_api(world: World, client_for: Any) -> None:
    with time_machine.travel(T0, tick=False) as clock:
        client = client_for("nurse")
        assert client.get("/api/v1/patients").status_code == 200
        clock.shift(timedelta(minutes=16))
        response = client.get("/api/v1/patients")
        assert response.status_code == 401
        assert set(response.json()) == {"detail", "errors"}
        assert not is_signed_in(client)
        assert client.get("/api/v1/patients").status_code == 401


def test_activity_inside_the_window_keeps_the_session(world: World, client_for: Any) -> None:
    with time_machine.travel(T0, tick=False) as clock:
        client = client_for("nurse")
        for _ in range(6):  # 6 × 14 minutes = 84 minutes of steady work
            assert client.get("/patients/").status_code == 200
            clock.shift(timedelta(minutes=14))
        assert client.get("/api/v1/patients").status_code == 200
        assert is_signed_in(client)


def test_background_polling_does_not_count_as_activity(world: World, client_for: Any) -> None:
    with time_machine.travel(T0, tick=False) as clock:
        client = client_for("nurse")
        assert client.get("/patients/").status_code == 200
        clock.shift(timedelta(minutes=10))
        assert client.get("/patients/", headers={"X-KC-Background": "1"}).status_code == 200
        clock.shift(timedelta(minutes=6))
        assert client.get("/patients/").status_code == 302
        assert not is_signed_in(client)


# --- API tokens -----------------------------------------------------------------------------------


def bearer(raw: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {raw}"}


def create_token_via_profile(client: Client, name: str, days: int) -> tuple[str, ApiToken]:
    response = client.post("/accounts/profile/tokens/", {"name": name, "days": days})
    assert response.status_code == 302 and response["Location"] == "/accounts/profile/"
    page = client.get("/accounts/profile/").content.decode()
    match = re.search(r'data-testid="new-token">([^<]+)<', page)
    assert match, "the new token is shown on the profile page"
    raw = match.group(1)
    again = client.get("/accounts/profile/").content.decode()
    assert raw not in again, "the raw token is shown once only"
    return raw, ApiToken.objects.get(name=name)


def test_token_is_shown_once_and_only_its_digest_is_stored(world: World, client_for: Any) -> None:
    client = client_for("nurse")
    raw, token = create_token_via_profile(client, "Chair 3 tablet", 30)
    assert raw.startswith("kc_") and len(raw) >= 40
    assert token.user == world.users["nurse"]
    assert token.token_digest == hashlib.sha256(raw.encode()).hexdigest()
    stored = [str(v) for v in ApiToken.objects.filter(pk=token.pk).values().get().values()]
    assert raw not in stored
    assert token.hint == raw[:10]
    create = AuditEvent.objects.get(action="token_create")
    assert (create.user_id, create.object_id) == (world.users["nurse"].pk, str(token.pk))

    api = Client().get("/api/v1/patients", headers=bearer(raw))
    assert api.status_code == 200
    names = {p["last_name"] for p in api.json()["items"]}
    assert names == {"Abbott", "Baker"}  # clinic A only


def test_token_form_refuses_bad_expiry(world: World, client_for: Any) -> None:
    client = client_for("nurse")
    for days in (0, settings.KETACLINIC_TOKEN_MAX_DAYS + 1):
        response = client.post("/accounts/profile/tokens/", {"name": "too long", "days": days})
        assert response.status_code == 400
        assert 'id="id_days_error"' in response.content.decode()
    assert not ApiToken.objects.exists()


def test_token_expires(world: World, client_for: Any) -> None:
    with time_machine.travel(T0, tick=False) as clock:
        raw, token = create_token_via_profile(client_for("nurse"), "one day", 1)
        assert token.expires_at == T0 + timedelta(days=1)
        clock.shift(timedelta(hours=23, minutes=59))
        assert Client().get("/api/v1/patients", headers=bearer(raw)).status_code == 200
        clock.shift(timedelta(minutes=2))
        expired = Client().get("/api/v1/patients", headers=bearer(raw))
        assert expired.status_code == 401
        assert set(expired.json()) == {"detail", "errors"}


def test_revoked_token_is_refused(world: World, client_for: Any) -> None:
    client = client_for("nurse")
    raw, token = create_token_via_profile(client, "script", 30)
    assert Client().get("/api/v1/patients", headers=bearer(raw)).status_code == 200
    response = client.post(f"/accounts/profile/tokens/{token.pk}/revoke/")
    assert response.status_code == 302
    token.refresh_from_db()
    assert token.revoked_at is not None
    assert Client().get("/api/v1/patients", headers=bearer(raw)).status_code == 401
    assert AuditEvent.objects.filter(action="token_revoke", object_id=str(token.pk)).count() == 1


def test_a_token_of_another_user_cannot_be_revoked(world: World, client_for: Any) -> None:
    raw, token = create_token_via_profile(client_for("prescriber"), "prescriber script", 30)
    response = client_for("nurse").post(f"/accounts/profile/tokens/{token.pk}/revoke/", follow=True)
    assert "No such token." in response.content.decode()
    token.refresh_from_db()
    assert token.revoked_at is None
    assert not AuditEvent.objects.filter(action="token_revoke").exists()
    assert Client().get("/api/v1/patients", headers=bearer(raw)).status_code == 200


@pytest.mark.parametrize(
    "header",
    [
        "Bearer kc_not-a-real-token",
        "Bearer ",
        "Bearer no-prefix-token",
        "Basic bnVyc2VfYTp4",
        "Bearer kc_" + "x" * 5000,
    ],
)
def test_unknown_tokens_are_refused(world: World, header: str) -> None:
    response = Client().get("/api/v1/patients", headers={"Authorization": header})
    assert response.status_code == 401
    assert set(response.json()) == {"detail", "errors"}


def test_token_of_a_deactivated_user_is_refused(world: World, client_for: Any) -> None:
    raw, _ = create_token_via_profile(client_for("nurse"), "old laptop", 30)
    User.objects.filter(pk=world.users["nurse"].pk).update(is_active=False)
    assert Client().get("/api/v1/patients", headers=bearer(raw)).status_code == 401


def test_token_carries_its_users_role(world: World) -> None:
    """A token is no stronger than its owner: a patient's token cannot list patients."""
    client = login(Client(), world.users["patient"], mfa=False)
    raw, _ = create_token_via_profile(client, "my phone", 30)
    assert Client().get("/api/v1/patients", headers=bearer(raw)).status_code == 403
    other = UserFactory(username="no_roles")
    raw2, _ = create_token_via_profile(login(Client(), other, mfa=False), "no roles", 30)
    assert Client().get("/api/v1/patients", headers=bearer(raw2)).status_code == 403
