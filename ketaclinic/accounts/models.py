"""Organisations, clinics (sites), users, per-clinic role memberships and API tokens."""

from __future__ import annotations

import hashlib
import zoneinfo

from django.contrib.auth.models import AbstractUser
from django.core.exceptions import ValidationError
from django.db import models

from ketaclinic.accounts.choices import STAFF_ROLES, Role


def validate_timezone(value: str) -> None:
    if value not in zoneinfo.available_timezones():
        raise ValidationError(f"{value!r} is not a known time zone (e.g. America/New_York).")


class Organisation(models.Model):
    """The legal entity running one or more clinics; medical record numbers are unique within it."""

    name = models.CharField(max_length=200)
    slug = models.SlugField(unique=True)
    mrn_prefix = models.CharField(max_length=6, default="KC")
    # Last medical record number issued; incremented under a row lock by patient_create.
    mrn_counter = models.PositiveBigIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.name


class Clinic(models.Model):
    """A site where patients are treated. Every patient-scoped row belongs to exactly one clinic."""

    organisation = models.ForeignKey(Organisation, on_delete=models.PROTECT, related_name="clinics")
    name = models.CharField(max_length=200)
    slug = models.SlugField()
    address_line1 = models.CharField(max_length=200, blank=True)
    address_line2 = models.CharField(max_length=200, blank=True)
    city = models.CharField(max_length=100, blank=True)
    state = models.CharField(max_length=50, blank=True)
    postal_code = models.CharField(max_length=20, blank=True)
    phone = models.CharField(max_length=40, blank=True)
    timezone = models.CharField(
        max_length=64, default="America/New_York", validators=[validate_timezone]
    )
    # DEA registration of the site (21 CFR 1301.12: one registration per principal place).
    dea_registration_number = models.CharField(max_length=9, blank=True)
    # Spravato REMS outpatient healthcare-setting certification (clinical.md §4).
    rems_certified = models.BooleanField(default=False)
    rems_setting_id = models.CharField("REMS setting ID", max_length=40, blank=True)
    rems_certified_on = models.DateField(null=True, blank=True)
    rems_authorized_representative = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["organisation", "slug"], name="clinic_slug_per_org")
        ]
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class User(AbstractUser):
    """A person who signs in. One account per person: no shared logins (HIPAA 164.312(a)(2)(i))."""

    display_name = models.CharField(max_length=200, blank=True)
    credentials = models.CharField(
        max_length=60, blank=True, help_text="Shown after the name on signatures, e.g. MD, RN."
    )

    def __str__(self) -> str:
        return self.display_name or self.get_full_name() or self.username

    @property
    def signature_name(self) -> str:
        name = self.display_name or self.get_full_name() or self.username
        return f"{name}, {self.credentials}" if self.credentials else name


class Membership(models.Model):
    """A user's role at one clinic. One role per user per clinic."""

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="memberships")
    clinic = models.ForeignKey(Clinic, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=20, choices=Role.choices)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "clinic"], name="one_role_per_clinic")
        ]
        indexes = [models.Index(fields=["user", "is_active"])]

    def __str__(self) -> str:
        return f"{self.user} — {self.get_role_display()} at {self.clinic}"

    @property
    def is_staff_role(self) -> bool:
        return self.role in STAFF_ROLES


class ApiToken(models.Model):
    """A personal access token for /api/v1. Only a SHA-256 digest is stored; it expires."""

    PREFIX = "kc_"

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=100)
    token_digest = models.CharField(max_length=64, unique=True)
    hint = models.CharField(max_length=12, help_text="First characters, to recognise the token.")
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    revoked_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.name} ({self.hint}…)"

    @staticmethod
    def digest(raw: str) -> str:
        return hashlib.sha256(raw.encode()).hexdigest()
