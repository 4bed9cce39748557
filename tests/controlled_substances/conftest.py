"""Ledger fixtures: a catalogue, storage locations, patients with addresses, fast witnesses.

Witness signatures check real passwords. PBKDF2 at Django's cost takes most of a second, so these
tests hash the personas' passwords with MD5 (test-only) to keep hundreds of signatures fast.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

import pytest
from django.contrib.auth.hashers import make_password

from ketaclinic.accounts.models import User
from ketaclinic.controlled_substances import services
from ketaclinic.controlled_substances.choices import LocationKind, ProductForm, Substance
from ketaclinic.controlled_substances.models import Lot, Product, StorageLocation
from ketaclinic.controlled_substances.signatures import WitnessAttestation
from ketaclinic.patients.models import Patient
from tests.conftest import World
from tests.factories import PASSWORD, PatientFactory

FAST_HASHERS = [
    "django.contrib.auth.hashers.MD5PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
]
SUPPLIER = {
    "supplier_name": "Cardinal Health 110, LLC",
    "supplier_address": "7000 Cardinal Pl, Dublin, OH 43017",
    "supplier_dea_number": "RC0123454",
    "invoice_number": "INV-1001",
}
FAR_EXPIRY = date(2099, 12, 31)


def attest(user: User, password: str = PASSWORD, otp: str = "", **kw: Any) -> WitnessAttestation:
    return WitnessAttestation(user=user, password=password, otp=otp, **kw)


@dataclass
class Ledger:
    world: World
    vial50: Product  # 50 mg/mL × 10 mL = 500 mg
    vial10: Product  # 10 mg/mL × 20 mL = 200 mg
    device: Product  # esketamine 28 mg per device
    safe: StorageLocation
    cart: StorageLocation
    safe_b: StorageLocation
    patient: Patient  # clinic A, with an address
    patient2: Patient  # clinic A, with an address
    patient_b: Patient  # clinic B, with an address

    @property
    def clinic(self) -> Any:
        return self.world.clinic_a

    def user(self, persona: str) -> User:
        return self.world.users[persona]

    def receive(
        self,
        product: Product | None = None,
        *,
        containers: int = 2,
        location: Any = None,
        lot_number: str = "LOT-A",
        actor: str = "nurse",
        clinic: Any = None,
        **kw: Any,
    ) -> Lot:
        entry = services.receipt_record(
            actor=self.user(actor),
            clinic=clinic or self.clinic,
            location=location or self.safe,
            product=product or self.vial50,
            lot_number=lot_number,
            expires_on=kw.pop("expires_on", FAR_EXPIRY),
            containers=containers,
            **{**SUPPLIER, **kw},
        )
        return entry.lot


@pytest.fixture
def fast_passwords(settings: Any, world: World) -> None:
    settings.PASSWORD_HASHERS = FAST_HASHERS
    fast = make_password(PASSWORD)
    User.objects.filter(pk__in=[u.pk for u in world.users.values()]).update(password=fast)
    for user in world.users.values():
        user.password = fast


def _with_address(patient: Patient) -> Patient:
    patient.address_line1 = "12 Elm St"
    patient.city = "Boston"
    patient.state = "MA"
    patient.postal_code = "02116"
    patient.save()
    return patient


@pytest.fixture
def lg(world: World, fast_passwords: None) -> Ledger:
    vial50 = Product.objects.create(
        ndc="11111-222-10",
        name="Ketamine HCl",
        substance=Substance.KETAMINE,
        form=ProductForm.VIAL,
        mg_per_ml=50,
        ml_per_container=10,
        mg_per_container=500,
        containers_per_package=10,
    )
    vial10 = Product.objects.create(
        ndc="11111-222-20",
        name="Ketamine HCl",
        substance=Substance.KETAMINE,
        form=ProductForm.VIAL,
        mg_per_ml=10,
        ml_per_container=20,
        mg_per_container=200,
        containers_per_package=10,
    )
    device = Product.objects.create(
        ndc="22222-028-02",
        name="Spravato",
        substance=Substance.ESKETAMINE,
        form=ProductForm.NASAL_DEVICE,
        mg_per_container=28,
        containers_per_package=2,
    )
    safe = StorageLocation.objects.create(
        clinic=world.clinic_a, name="Safe", kind=LocationKind.SAFE
    )
    cart = StorageLocation.objects.create(
        clinic=world.clinic_a, name="Cart", kind=LocationKind.CART
    )
    safe_b = StorageLocation.objects.create(
        clinic=world.clinic_b, name="Safe B", kind=LocationKind.SAFE
    )
    return Ledger(
        world,
        vial50,
        vial10,
        device,
        safe,
        cart,
        safe_b,
        _with_address(world.patient_a2),
        _with_address(PatientFactory(clinic=world.clinic_a)),
        _with_address(world.patient_b),
    )
