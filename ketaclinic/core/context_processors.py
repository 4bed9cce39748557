"""What the base layout needs on every page: demo banner, role-based navigation."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest

from ketaclinic.accounts import access
from ketaclinic.core.reversing import reverse_fixed


def clinic_context(request: HttpRequest) -> dict[str, object]:
    user = getattr(request, "user", None)
    nav: list[tuple[str, str]] = []
    nav_for_user = user is not None and user.is_authenticated
    if nav_for_user:
        if access.has_permission(user, "patient.view"):
            nav.append(("patients:list", "Patients"))
        if access.has_permission(user, "referral.manage"):
            nav.append(("screening:queue", "Referrals"))
        if access.has_permission(user, "schedule.view"):
            nav.append(("courses:board", "Day board"))
        if access.has_permission(user, "course.view"):
            nav.append(("courses:list", "Courses"))
            nav.append(("treatment_sessions:board", "Room board"))
            nav.append(("treatment_sessions:rems_worklist", "REMS forms"))
        if access.has_permission(user, "measures.view"):
            nav.append(("measures:alert_inbox", "Alerts"))
        if access.has_permission(user, "outcomes.view"):
            nav.append(("measures:outcomes", "Outcomes"))
        if access.has_permission(user, "measures.configure"):
            nav.append(("measures:plan_list", "Measurement plans"))
        if access.has_permission(user, "cs.view"):
            nav.append(("controlled_substances:index", "Controlled substances"))
        if access.has_permission(user, "clinic.configure"):
            nav.append(("courses:settings", "Clinic settings"))
        if access.has_permission(user, "audit.view"):
            nav.append(("audit:report", "Audit log"))
    return {
        "demo_mode": settings.DEMO_MODE,
        # (url, label): reversed once per URLconf and prefix, not per page.
        "nav_items": [(reverse_fixed(name), label) for name, label in nav],
        "nav_home": reverse_fixed("core:home"),
        "nav_profile": reverse_fixed("accounts:profile") if nav_for_user else "",
        "nav_logout": reverse_fixed("accounts:logout") if nav_for_user else "",
        "crisis_line": settings.KETACLINIC_CRISIS_LINE,
    }
