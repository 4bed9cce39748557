"""HTTP hardening (security.md R13, R14, R29): headers, error pages, production settings.

R13: CSP, framing, sniffing and referrer headers on pages and API answers; production settings
pass `check --deploy` with no warnings. R14: nothing a browser or proxy could keep (no-store).
R29: errors fail closed: friendly pages or the API's JSON, never a traceback, never a 500 for bad
input.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from django.test import Client

from ketaclinic.accounts import services as account_services
from ketaclinic.patients import selectors
from tests.conftest import World
from tests.routes import api_operations, url_routes

REPO = Path(__file__).resolve().parent.parent


def api_token(world: World, persona: str) -> str:
    return account_services.api_token_create(actor=world.users[persona], name="h", days=5)[1]


def assert_hardened(response: Any) -> None:
    csp = response["Content-Security-Policy"]
    directives = dict(part.strip().split(" ", 1) for part in csp.split(";") if part.strip())
    assert directives["default-src"] == "'self'"
    assert directives["script-src"] == "'self'"  # no 'unsafe-inline', no 'unsafe-eval'
    assert directives["style-src"] == "'self'"
    assert directives["frame-ancestors"] == "'none'"
    assert directives["object-src"] == "'none'"
    assert directives["base-uri"] == "'self'"
    assert directives["form-action"] == "'self'"
    assert response["X-Frame-Options"] == "DENY"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Referrer-Policy"] == "same-origin"
    assert response["Cross-Origin-Opener-Policy"] == "same-origin"
    assert "no-store" in response["Cache-Control"]
    assert response["X-Request-ID"]


def test_pages_carry_the_security_headers(world: World, client_for: Any) -> None:
    nurse = client_for("nurse")
    for response in [
        Client().get("/accounts/login/"),
        nurse.get("/patients/"),
        nurse.get(f"/patients/{world.patient_a2.pk}/"),
        nurse.get(f"/patients/{world.patient_b.pk}/"),  # 404 page
        client_for("patient").get("/patients/"),  # 403 page
        client_for("auditor").get("/audit/export.csv"),
        Client().get("/patients/"),  # redirect to sign in
    ]:
        assert_hardened(response)


def test_api_answers_carry_the_security_headers(world: World, client_for: Any) -> None:
    token = {"Authorization": f"Bearer {api_token(world, 'nurse')}"}
    for response in [
        Client().get("/api/v1/patients", headers=token),
        Client().get(f"/api/v1/patients/{world.patient_a2.pk}", headers=token),
        Client().get("/api/v1/patients"),  # 401
        Client().get("/api/v1/patients/999999", headers=token),  # 404
        client_for("nurse").get("/api/v1/openapi.json"),
    ]:
        assert_hardened(response)


def test_session_and_csrf_cookies_are_not_readable_by_scripts(world: World) -> None:
    from tests.factories import PASSWORD

    client = Client()
    client.get("/accounts/login/")
    response = client.post("/accounts/login/", {"username": "patient_a", "password": PASSWORD})
    session = response.cookies["sessionid"]
    assert session["httponly"] and session["samesite"] == "Lax"
    csrf = client.cookies["csrftoken"]
    assert csrf["httponly"] and csrf["samesite"] == "Lax"


def test_request_ids_are_echoed_only_when_safe(world: World) -> None:
    safe = Client().get("/healthz", headers={"X-Request-ID": "lb-1234abcd"})
    assert safe["X-Request-ID"] == "lb-1234abcd"
    for hostile in ["short", "a" * 65, "abc def ghi", "x\r\nSet-Cookie: a=b", "<script>1</script>"]:
        response = Client().get("/healthz", headers={"X-Request-ID": hostile})
        assert response["X-Request-ID"] != hostile
        assert len(response["X-Request-ID"]) == 32


# --- Error pages ------------------------------------------------------------------------------


def assert_friendly(response: Any, status: int, title: str) -> str:
    assert response.status_code == status
    html = response.content.decode()
    assert f"<h1>{title}</h1>" in html
    assert f"Error {status}" in html
    for leak in ("Traceback", 'File "', "django.", "Request Method", "settings.py"):
        assert leak not in html
    return html


def test_not_found_and_forbidden_pages_are_friendly(world: World, client_for: Any) -> None:
    nurse = client_for("nurse")
    html = assert_friendly(nurse.get("/no/such/page/"), 404, "Not found")
    assert 'href="/"' in html
    other = assert_friendly(nurse.get(f"/patients/{world.patient_b.pk}/"), 404, "Not found")
    assert "Carter" not in other and world.patient_b.mrn not in other
    assert_friendly(client_for("patient").get("/patients/"), 403, "Not allowed")
    assert_friendly(client_for("nurse").get("/audit/"), 403, "Not allowed")


def test_bad_host_gets_a_friendly_400(world: World) -> None:
    assert_friendly(Client().get("/accounts/login/", HTTP_HOST="evil.example"), 400, "Bad request")


def test_server_errors_are_friendly_and_leak_nothing(
    world: World, client_for: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    def explode(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError(f"crash near {world.patient_a2.last_name}")

    monkeypatch.setattr(selectors, "patient_search", explode)
    client = client_for("nurse")
    client.raise_request_exception = False
    response = client.get("/patients/")
    html = assert_friendly(response, 500, "Something went wrong")
    assert f"reference {response['X-Request-ID']}" in html
    assert "crash near" not in html and world.patient_a2.last_name not in html
    assert "RuntimeError" not in html


# --- Nothing a visitor sends produces a 500 ---------------------------------------------------

HOSTILE_QUERY = (
    "q=%00&dob=%00&mrn=%00&page=%00&date_from=%00&date_to=2026-13-40&user=%00&patient=-1"
    "&action=%00&sort=%00&next=%00&limit=-1&offset=%00&date_of_birth=%00&clinic_id=%00"
)
STRANGE_VALUES = [
    "%00",
    "%27%20OR%201%3D1--",
    "%F0%9F%92%A5" * 50,
    "9" * 40,
    "-1",
    "",
    "%3Cscript%3E",
    "x" * 5000,
]


@pytest.mark.parametrize("persona", ["clinic_admin", "auditor", "patient", "anonymous"])
def test_no_route_answers_500_to_hostile_query_strings(
    world: World, client_for: Any, persona: str
) -> None:
    client = client_for(persona)
    client.raise_request_exception = False
    known = {"patient_id": world.patient_a2.pk, "clinic_id": world.clinic_a.pk}
    paths = [r.sample_path(known) for r in url_routes()]
    paths += [op.sample_path(known) for op in api_operations() if op.method == "GET"]
    tried = 0
    for path in sorted(set(paths)):
        queries = [HOSTILE_QUERY] + [f"q={v}&page={v}&sort={v}&user={v}" for v in STRANGE_VALUES]
        for query in queries:
            response = client.get(f"{path}?{query}")
            assert response.status_code < 500, (persona, path, query[:60])
            tried += 1
    assert tried > 100


def test_hostile_login_input_is_refused_not_crashed(world: World) -> None:
    client = Client()
    client.raise_request_exception = False
    for username, password in [
        ("nurse\x00_a", "x" * 12),
        ("x" * 10_000, "y" * 10_000),
        ("' OR 1=1 --", "' OR 1=1 --"),
        ("", ""),
    ]:
        response = client.post("/accounts/login/", {"username": username, "password": password})
        assert response.status_code in {200, 429}
        assert "_auth_user_id" not in client.session


# --- Production settings ----------------------------------------------------------------------


def run_production_command(*args: str, **env_overrides: str) -> subprocess.CompletedProcess[str]:
    """`ketaclinic <args>` as production runs it: no test or demo switches in the environment."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("KETACLINIC_", "DJANGO_", "DATABASE_URL", "SQLITE_"))
    }
    env.update(
        # This checkout first, whatever the virtual environment's editable install points at.
        PYTHONPATH=str(REPO),
        DJANGO_SECRET_KEY=secrets.token_urlsafe(60)[:60],
        DJANGO_ALLOWED_HOSTS="clinic.example.org",
    )
    env.update(env_overrides)
    env = {k: v for k, v in env.items() if v != ""}
    command = Path(sys.executable).with_name("ketaclinic")
    return subprocess.run(  # noqa: S603 (our own console script, fixed arguments)
        [str(command), *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=180
    )


def test_production_settings_pass_check_deploy_without_warnings() -> None:
    result = run_production_command("check", "--deploy", "--fail-level", "WARNING")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout


def test_check_deploy_would_catch_a_weakened_setting() -> None:
    """The check above is not vacuous: switching HSTS off makes the same command fail."""
    result = run_production_command(
        "check", "--deploy", "--fail-level", "WARNING", KETACLINIC_HSTS_SECONDS="0"
    )
    assert result.returncode != 0
    assert "security.W004" in result.stdout + result.stderr


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"DJANGO_SECRET_KEY": ""}, "Set DJANGO_SECRET_KEY"),
        ({"KETACLINIC_REQUIRE_STAFF_MFA": "0"}, "KETACLINIC_REQUIRE_STAFF_MFA=0 is allowed only"),
    ],
    ids=["no secret key", "MFA off outside demo mode"],
)
def test_production_refuses_to_start_misconfigured(overrides: dict[str, str], message: str) -> None:
    result = run_production_command("check", **overrides)
    assert result.returncode != 0
    assert message in result.stderr
