"""Personas and helpers shared by every test.

Two clinics of one organisation; a user of every role at clinic A; a nurse of clinic B
(`other_clinic_nurse`) for cross-clinic checks; a patient with a portal login at clinic A.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from django.test import Client
from django_otp import DEVICE_ID_SESSION_KEY
from django_otp.plugins.otp_totp.models import TOTPDevice

from ketaclinic.accounts.choices import Role
from ketaclinic.accounts.models import Clinic, Organisation, User
from ketaclinic.patients.models import Patient
from tests.factories import (
    ClinicFactory,
    MembershipFactory,
    OrganisationFactory,
    PatientFactory,
    UserFactory,
)

STAFF_PERSONAS = ("prescriber", "nurse", "front_desk", "clinic_admin", "auditor")
ALL_PERSONAS = (*STAFF_PERSONAS, "patient", "other_clinic_nurse", "anonymous")


@dataclass
class World:
    org: Organisation
    clinic_a: Clinic
    clinic_b: Clinic
    users: dict[str, User]
    patient_a: Patient  # clinic A, linked to the `patient` persona's login
    patient_a2: Patient  # clinic A, no login
    patient_b: Patient  # clinic B


@pytest.fixture
def world(db: Any) -> World:
    org = OrganisationFactory(name="Harbor Test Partners", slug="harbor-test")
    clinic_a = ClinicFactory(organisation=org, name="Clinic A", slug="a")
    clinic_b = ClinicFactory(organisation=org, name="Clinic B", slug="b", city="Denver")
    users: dict[str, User] = {}
    for role in STAFF_PERSONAS:
        users[role] = UserFactory(username=f"{role}_a")
        MembershipFactory(user=users[role], clinic=clinic_a, role=role)
    users["other_clinic_nurse"] = UserFactory(username="nurse_b")
    MembershipFactory(user=users["other_clinic_nurse"], clinic=clinic_b, role=Role.NURSE)
    users["patient"] = UserFactory(username="patient_a")
    MembershipFactory(user=users["patient"], clinic=clinic_a, role=Role.PATIENT)
    patient_a = PatientFactory(clinic=clinic_a, user=users["patient"], last_name="Abbott")
    patient_a2 = PatientFactory(clinic=clinic_a, last_name="Baker")
    patient_b = PatientFactory(clinic=clinic_b, last_name="Carter")
    return World(org, clinic_a, clinic_b, users, patient_a, patient_a2, patient_b)


def verified_device(user: User) -> TOTPDevice:
    device = TOTPDevice.objects.filter(user=user, confirmed=True).first()
    return device or TOTPDevice.objects.create(user=user, name="test", confirmed=True)


def login(client: Client, user: User | None, *, mfa: bool = True) -> Client:
    """Sign the client in as the user, with the TOTP step completed unless mfa=False."""
    if user is None:
        return client
    client.force_login(user)
    if mfa:
        session = client.session
        session[DEVICE_ID_SESSION_KEY] = verified_device(user).persistent_id
        session.save()
    return client


@pytest.fixture
def client_for(world: World):  # type: ignore[no-untyped-def]
    """client_for("nurse") → a Client signed in (MFA passed) as that persona; "anonymous" → none."""

    def make(persona: str, *, mfa: bool = True) -> Client:
        client = Client()
        if persona == "anonymous":
            return client
        return login(client, world.users[persona], mfa=mfa)

    return make
