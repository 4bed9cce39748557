from typing import Any

from ketaclinic.audit.models import AuditEvent


def test_nurse_opens_own_clinic_chart_and_gets_404_for_other_clinic(world, client_for):
    nurse = client_for("nurse")
    own = nurse.get(f"/patients/{world.patient_a2.pk}/")
    assert own.status_code == 200
    assert "Baker" in own.content.decode()
    other = nurse.get(f"/patients/{world.patient_b.pk}/")
    missing = nurse.get("/patients/999999/")
    assert other.status_code == missing.status_code == 404
    reads = AuditEvent.objects.filter(action="read", patient_id=world.patient_a2.pk)
    assert reads.count() == 1


def test_navigation_links_are_the_reversed_routes_under_any_script_prefix(
    world: Any, client_for: Any
) -> None:
    """The main navigation reverses its routes once per URLconf and prefix; the links must be
    exactly what reverse() gives, also when the site is served under a sub-path."""
    import re

    from django.urls import reverse, set_script_prefix

    client = client_for("clinic_admin")
    page = client.get("/patients/").content.decode()
    nav = page.split('<nav aria-label="Main">', 1)[1].split("</nav>", 1)[0]
    hrefs = re.findall(r'href="([^"]+)"', nav)
    expected = [reverse("core:home"), reverse("patients:list"), reverse("accounts:profile")]
    assert set(expected) <= set(hrefs)
    assert f'action="{reverse("accounts:logout")}"' in nav
    # No cache_clear(): the links reversed for "/" above are cached and must not be reused.
    set_script_prefix("/clinic/")  # as the WSGI handler does for a site under /clinic/
    try:
        nav = client.get("/patients/").content.decode().split('<nav aria-label="Main">', 1)[1]
        nav = nav.split("</nav>", 1)[0]
    finally:
        set_script_prefix("/")
    assert 'href="/clinic/patients/"' in nav and 'href="/clinic/"' in nav
    assert 'href="/patients/"' not in nav
