"""Dose and pump arithmetic for IV ketamine, and device sequencing for esketamine.

IV (reference §1e) [V]::

    dose_mg         = dose_mg_per_kg * weight_kg
    volume_ml       = dose_mg / concentration_mg_per_ml
    rate_ml_per_h   = volume_ml * 60 / minutes
    mg_per_kg_per_h = dose_mg_per_kg * 60 / minutes

Each figure is computed exactly from the order and then rounded half-up (mL, mg and mL/h to
0.1; mg/kg/h to 0.01). VTBI equals the volume so the rest of the bag is not infused.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, localcontext

from ketaclinic.clinical.errors import UnsafeOrder
from ketaclinic.clinical.settings import ClinicalSettings, resolve
from ketaclinic.clinical.validation import require_decimal

__all__ = [
    "ESKETAMINE_DOSES_MG",
    "ESKETAMINE_MG_PER_DEVICE",
    "ESKETAMINE_MINUTES_BETWEEN_DEVICES",
    "MAX_CONCENTRATION_MG_PER_ML",
    "EsketamineAdministration",
    "Infusion",
    "esketamine_administration",
    "iv_infusion",
]

# Vials of 50 and 100 mg/mL are never infused undiluted; a bag at 50 mg/mL or more is vial
# strength (Ketalar label; reference §1a, §10 rule 13) [V].
MAX_CONCENTRATION_MG_PER_ML = Decimal("50")

# One Spravato device holds 28 mg; wait 5 min between devices (Spravato PI §2; reference §1b) [V].
ESKETAMINE_MG_PER_DEVICE = 28
ESKETAMINE_MINUTES_BETWEEN_DEVICES = 5
# Labelled doses: 28 mg (age >= 65 start outside the US), 56 mg and 84 mg (reference §1b) [V].
ESKETAMINE_DOSES_MG: tuple[int, ...] = (28, 56, 84)

_TENTH = Decimal("0.1")
_HUNDREDTH = Decimal("0.01")
_MINUTES_PER_HOUR = Decimal(60)


@dataclass(frozen=True)
class Infusion:
    """What to draw up and program on the pump."""

    dose_mg: Decimal
    volume_ml: Decimal
    rate_ml_per_h: Decimal
    vtbi_ml: Decimal
    mg_per_kg_per_h: Decimal


@dataclass(frozen=True)
class EsketamineAdministration:
    """How many 28 mg devices to use and how long to wait between them."""

    devices: int
    minutes_between_devices: int

    @property
    def dose_mg(self) -> int:
        """The total dose delivered by the devices."""
        return self.devices * ESKETAMINE_MG_PER_DEVICE

    @property
    def minimum_minutes(self) -> int:
        """Minutes from the first to the last device."""
        return (self.devices - 1) * self.minutes_between_devices


def iv_infusion(
    *,
    weight_kg: Decimal | int | float,
    dose_mg_per_kg: Decimal | int | float,
    minutes: Decimal | int | float,
    concentration_mg_per_ml: Decimal | int | float,
    settings: ClinicalSettings | None = None,
) -> Infusion:
    """Compute dose, volume, pump rate and VTBI for a weight-based IV ketamine infusion.

    Raises ``UnsafeOrder`` for a concentration of 50 mg/mL or more, a dose above
    ``settings.iv_max_dose_mg_per_kg`` (default 2 mg/kg) or not above 0, a weight outside
    ``settings.iv_min_weight_kg``..``iv_max_weight_kg`` (default 20-350 kg), non-positive
    minutes or a non-positive concentration; a non-number raises ``UnsafeOrder`` too.
    """
    config = resolve(settings)
    weight = require_decimal(weight_kg, "weight_kg", error=UnsafeOrder)
    dose_per_kg = require_decimal(dose_mg_per_kg, "dose_mg_per_kg", error=UnsafeOrder)
    duration = require_decimal(minutes, "minutes", error=UnsafeOrder)
    concentration = require_decimal(
        concentration_mg_per_ml, "concentration_mg_per_ml", error=UnsafeOrder
    )

    if not config.iv_min_weight_kg <= weight <= config.iv_max_weight_kg:
        raise UnsafeOrder(
            f"weight_kg {weight} is outside {config.iv_min_weight_kg}-{config.iv_max_weight_kg} "
            "kg; re-weigh the patient"
        )
    if dose_per_kg <= 0:
        raise UnsafeOrder(f"dose_mg_per_kg must be above 0, got {dose_per_kg}")
    if dose_per_kg > config.iv_max_dose_mg_per_kg:
        raise UnsafeOrder(
            f"dose_mg_per_kg {dose_per_kg} is above the limit of "
            f"{config.iv_max_dose_mg_per_kg} mg/kg"
        )
    if duration <= 0:
        raise UnsafeOrder(f"minutes must be above 0, got {duration}")
    if concentration <= 0:
        raise UnsafeOrder(f"concentration_mg_per_ml must be above 0, got {concentration}")
    if concentration >= MAX_CONCENTRATION_MG_PER_ML:
        raise UnsafeOrder(
            f"concentration_mg_per_ml {concentration} is vial strength "
            f"({MAX_CONCENTRATION_MG_PER_ML} mg/mL or more); dilute before IV infusion"
        )

    with localcontext() as context:
        context.prec = 34
        dose = dose_per_kg * weight
        volume = dose / concentration
        rate = volume * _MINUTES_PER_HOUR / duration
        per_kg_per_h = dose_per_kg * _MINUTES_PER_HOUR / duration
        volume_ml = volume.quantize(_TENTH, rounding=ROUND_HALF_UP)
        return Infusion(
            dose_mg=dose.quantize(_TENTH, rounding=ROUND_HALF_UP),
            volume_ml=volume_ml,
            rate_ml_per_h=rate.quantize(_TENTH, rounding=ROUND_HALF_UP),
            vtbi_ml=volume_ml,
            mg_per_kg_per_h=per_kg_per_h.quantize(_HUNDREDTH, rounding=ROUND_HALF_UP),
        )


def esketamine_administration(dose_mg: int) -> EsketamineAdministration:
    """Devices and spacing for an esketamine dose of 28, 56 or 84 mg.

    Any other dose (including a non-integer or a bool) raises ``UnsafeOrder``.
    """
    if (
        isinstance(dose_mg, bool)
        or not isinstance(dose_mg, int)
        or dose_mg not in ESKETAMINE_DOSES_MG
    ):
        allowed = ", ".join(str(dose) for dose in ESKETAMINE_DOSES_MG)
        raise UnsafeOrder(f"esketamine dose_mg must be one of {allowed} mg, got {dose_mg!r}")
    return EsketamineAdministration(
        devices=dose_mg // ESKETAMINE_MG_PER_DEVICE,
        minutes_between_devices=ESKETAMINE_MINUTES_BETWEEN_DEVICES,
    )
