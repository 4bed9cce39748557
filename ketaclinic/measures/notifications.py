"""Messages to patients and clinicians. Email and SMS are not secure channels, so messages carry
no clinical content: no questionnaire names, scores or alert details, only a link back into
KetaClinic where access is checked (minimum necessary, HIPAA 164.502(b))."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from zoneinfo import ZoneInfo

from django.conf import settings
from django.core.mail import send_mail
from django.urls import reverse

from ketaclinic.core.sms import send_sms


def absolute(path: str) -> str:
    return f"{settings.KETACLINIC_BASE_URL}{path}"


def questionnaire_link(raw_token: str) -> str:
    return absolute(reverse("portal:link_start", args=[raw_token]))


def _local(moment: datetime, tz_name: str) -> str:
    local = moment.astimezone(ZoneInfo(tz_name))
    return f"{local:%A %B} {local.day} at {local:%H:%M}"


def send_questionnaire(
    *,
    first_name: str,
    clinic_name: str,
    clinic_phone: str,
    tz_name: str,
    email: str,
    phone: str,
    raw_token: str,
    expires_at: datetime,
    reminder: bool,
) -> list[str]:
    """Email and/or text a patient the one-time link; returns the channels used."""
    link = questionnaire_link(raw_token)
    closes = _local(expires_at, tz_name)
    crisis = settings.KETACLINIC_CRISIS_LINE
    channels = []
    if email:
        subject = (
            f"Reminder: a short questionnaire from {clinic_name}"
            if reminder
            else f"A short questionnaire from {clinic_name}"
        )
        body = (
            f"Hello {first_name},\n\n"
            f"{clinic_name} asks you to answer a short questionnaire. It takes a few minutes "
            f"and helps your care team see how you are doing.\n\n"
            f"Open it here (this link works once and closes {closes}):\n{link}\n\n"
            f"You can also answer it after signing in to the patient portal.\n\n"
            f"This mailbox and the portal are not monitored around the clock. If you are in "
            f"crisis, call or text {crisis}; in an emergency call 911."
            + (f" To reach the clinic, call {clinic_phone}." if clinic_phone else "")
        )
        send_mail(subject, body, None, [email])
        channels.append("email")
    if phone:
        text = (
            f"{clinic_name}: {'reminder, ' if reminder else ''}please answer a short "
            f"questionnaire (link works once, closes {closes}): {link} "
            f"Not monitored 24/7. Crisis: call/text {crisis}."
        )
        send_sms(phone, text)
        channels.append("sms")
    return channels


def send_alert_notice(
    *, recipients: Iterable[str], clinic_name: str, alert_path: str, escalated: bool, urgent: bool
) -> int:
    """Tell clinicians an alert is waiting; the details are behind the link."""
    to = sorted({address for address in recipients if address})
    if not to:
        return 0
    level = "HIGH-RISK safety alert" if urgent else "Safety alert"
    prefix = "Escalated: " if escalated else ""
    subject = f"{prefix}{level} waiting at {clinic_name}"
    body = (
        f"A {level.lower()} is waiting for acknowledgement in KetaClinic"
        f"{' and has not been acknowledged in time' if escalated else ''}.\n\n"
        f"Open it: {absolute(alert_path)}\n"
    )
    send_mail(subject, body, None, to)
    return len(to)
