"""A realistic, deterministic demo clinic: one organisation, two clinics, every role, patients.

Re-running is safe: people are matched by username and patients by MRN, so nothing is duplicated.
Later features add their own demo data by extending `seed_clinic`.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date, timedelta

from django.contrib.auth.hashers import make_password
from django.db import transaction
from faker import Faker

from ketaclinic.accounts.choices import Role
from ketaclinic.accounts.models import Clinic, Membership, Organisation, User
from ketaclinic.audit.choices import Action
from ketaclinic.audit.services import record_event
from ketaclinic.controlled_substances.demo import seed_controlled_substances
from ketaclinic.courses.demo import seed_treatment
from ketaclinic.measures.demo import seed_measures
from ketaclinic.patients.models import Patient
from ketaclinic.treatment_sessions.demo import seed_sessions

DEMO_PASSWORD = "ketaclinic-demo-2026"  # noqa: S105 (published demo credential)
ORG_SLUG = "harbor"
# Demo dates of birth are drawn relative to a fixed day so the seed is the same every day.
REFERENCE_DAY = date(2026, 1, 1)


@dataclass(frozen=True)
class DemoLogin:
    username: str
    role: str
    clinic: str
    name: str


CLINICS = (
    {
        "slug": "boston", "name": "Harbor Ketamine Clinic — Boston",
        "address_line1": "210 Commonwealth Ave", "city": "Boston", "state": "MA",
        "postal_code": "02116", "phone": "+1 617 555 0140", "timezone": "America/New_York",
        "dea_registration_number": "FH1234563", "rems_certified": True,
        "rems_setting_id": "HCS-0042917", "rems_certified_on": date(2024, 3, 18),
        "rems_authorized_representative": "Dr. Maya Chen",
    },
    {
        "slug": "denver", "name": "Harbor Ketamine Clinic — Denver",
        "address_line1": "1550 Larimer St", "city": "Denver", "state": "CO",
        "postal_code": "80202", "phone": "+1 303 555 0177", "timezone": "America/Denver",
        "dea_registration_number": "FO7654324", "rems_certified": False,
    },
)  # fmt: skip

STAFF = (
    ("dr.chen", "Maya", "Chen", "MD", Role.PRESCRIBER, "boston"),
    ("np.alvarez", "Lucia", "Alvarez", "PMHNP-BC", Role.PRESCRIBER, "boston"),
    ("nurse.ortiz", "Daniel", "Ortiz", "RN", Role.NURSE, "boston"),
    ("nurse.brooks", "Hannah", "Brooks", "RN", Role.NURSE, "boston"),
    ("desk.jones", "Tanya", "Jones", "", Role.FRONT_DESK, "boston"),
    ("admin.patel", "Ravi", "Patel", "", Role.CLINIC_ADMIN, "boston"),
    ("auditor.kim", "Grace", "Kim", "CPA", Role.AUDITOR, "boston"),
    ("dr.okafor", "Chidi", "Okafor", "MD", Role.PRESCRIBER, "denver"),
    ("nurse.lee", "Jordan", "Lee", "RN", Role.NURSE, "denver"),
    ("desk.ramos", "Elena", "Ramos", "", Role.FRONT_DESK, "denver"),
    ("admin.nguyen", "Bao", "Nguyen", "", Role.CLINIC_ADMIN, "denver"),
)
PORTAL_PATIENT = "patient.demo"


def _age_weights(rng: random.Random) -> int:
    # Adults treated for TRD/PTSD: most between 25 and 65.
    return max(18, min(88, int(rng.gauss(44, 13))))


def _phone(rng: random.Random) -> str:
    return f"+1 {rng.randint(201, 989)} 555 {rng.randint(0, 9999):04d}"  # 555: fictional


def _patients(org: Organisation, clinics: list[Clinic], count: int, seed: int) -> list[Patient]:
    fake = Faker("en_US")
    fake.seed_instance(seed)
    rng = random.Random(seed)
    rows = []
    for i in range(1, count + 1):
        sex = rng.choices(["female", "male", "intersex", "unknown"], [58, 40, 1, 1])[0]
        first = fake.first_name_female() if sex == "female" else fake.first_name_male()
        last = fake.last_name()
        age = _age_weights(rng)
        born = REFERENCE_DAY - timedelta(days=age * 365 + rng.randint(0, 364))
        clinic = clinics[0] if rng.random() < 0.7 else clinics[1]
        rows.append(
            Patient(
                clinic=clinic,
                organisation=org,
                mrn=f"{org.mrn_prefix}{i:06d}",
                first_name=first,
                last_name=last,
                preferred_name=fake.first_name() if rng.random() < 0.08 else "",
                date_of_birth=born,
                sex_at_birth=sex,
                pronouns=rng.choice(["she/her", "he/him", "they/them", ""])
                if rng.random() < 0.4
                else "",
                phone=_phone(rng),
                email=f"{first}.{last}{i}@example.com".lower(),
                address_line1=fake.street_address(),
                city=clinic.city if rng.random() < 0.8 else fake.city(),
                state=clinic.state,
                postal_code=fake.zipcode(),
                emergency_contact_name=fake.name(),
                emergency_contact_relationship=rng.choice(
                    ["spouse", "partner", "parent", "sibling", "friend", "adult child"]
                ),
                emergency_contact_phone=_phone(rng),
            )
        )
    return rows


@transaction.atomic
def seed_clinic(*, patients: int, seed: int) -> list[DemoLogin]:
    """Create (or complete) the demo organisation and return the demo logins."""
    org, _ = Organisation.objects.get_or_create(
        slug=ORG_SLUG, defaults={"name": "Harbor Mental Health Partners", "mrn_prefix": "KC"}
    )
    clinics = []
    for spec in CLINICS:
        values = {k: v for k, v in spec.items() if k != "slug"}
        clinic, _ = Clinic.objects.get_or_create(
            organisation=org, slug=spec["slug"], defaults=values
        )
        clinics.append(clinic)
    by_slug = {c.slug: c for c in clinics}
    # One hash for every demo account: PBKDF2 at Django's cost is deliberately slow.
    password_hash = make_password(DEMO_PASSWORD)
    logins = []
    for username, first, last, creds, role, clinic_slug in STAFF:
        user, created = User.objects.get_or_create(
            username=username,
            defaults={
                "first_name": first, "last_name": last, "credentials": creds,
                "email": f"{username}@harbor.example", "password": password_hash,
            },
        )  # fmt: skip
        Membership.objects.get_or_create(
            user=user, clinic=by_slug[clinic_slug], defaults={"role": role}
        )
        logins.append(DemoLogin(username, Role(role).label, by_slug[clinic_slug].name, str(user)))

    existing = set(Patient.objects.filter(organisation=org).values_list("mrn", flat=True))
    new_rows = [p for p in _patients(org, clinics, patients, seed) if p.mrn not in existing]
    Patient.objects.bulk_create(new_rows, batch_size=2000)
    top = Patient.objects.filter(organisation=org).count()
    if org.mrn_counter < top:
        org.mrn_counter = max(top, patients)
        org.save(update_fields=["mrn_counter"])

    portal_user, created = User.objects.get_or_create(
        username=PORTAL_PATIENT,
        defaults={"first_name": "Demo", "last_name": "Patient", "password": password_hash},
    )
    if created or not hasattr(portal_user, "patient_record"):
        unlinked = Patient.objects.filter(organisation=org, clinic=clinics[0], user__isnull=True)
        patient = unlinked.order_by("mrn").first()
        if patient is not None:
            patient.user = portal_user
            patient.save(update_fields=["user"])
            portal_user.first_name, portal_user.last_name = patient.first_name, patient.last_name
            portal_user.save(update_fields=["first_name", "last_name"])
    Membership.objects.get_or_create(
        user=portal_user, clinic=clinics[0], defaults={"role": Role.PATIENT}
    )
    logins.append(DemoLogin(PORTAL_PATIENT, Role.PATIENT.label, clinics[0].name, str(portal_user)))
    if new_rows:
        record_event(
            action=Action.SYSTEM,
            object_type="patients.patient",
            detail=f"demo seed: {len(new_rows)} patients created (seed {seed})",
        )
    seed_treatment(clinics=clinics)
    seed_controlled_substances(clinics=clinics, seed=seed)
    seed_measures(clinics=clinics, portal_user=portal_user, seed=seed)
    seed_sessions(clinics=clinics, seed=seed)
    return logins
