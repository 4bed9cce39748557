"""A printable cost estimate for a course, from the clinic's price list and billing codes.

Each booked session (scheduled or already given) becomes a line by what it is: an IV infusion
(96365, plus 96366 per extra hour), an esketamine session up to or over 56 mg (G2082/G2083,
which include the 2-hour observation) with the drug per mg where the clinic buys and bills it,
an IM or oral session; plus the initial consultation. Reference §9.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from decimal import Decimal

from ketaclinic.clinical import TREATMENTS
from ketaclinic.courses.choices import BOOKED_STATUSES, DEFAULT_BILLING_CODES, PriceKind
from ketaclinic.courses.models import Appointment, PriceItem, TreatmentCourse

# G2082 covers esketamine up to 56 mg; above that is G2083 (HCPCS descriptors, reference §9).
G2082_MAX_DOSE_MG = 56
# CPT: 96366 is added for each hour beyond the first, once more than 30 minutes of it is used.
FIRST_HOUR_MINUTES = 60
EXTRA_HOUR_THRESHOLD_MINUTES = 30


@dataclass
class EstimateLine:
    kind: str
    description: str
    billing_codes: str
    quantity: int
    unit_price: Decimal | None
    unit: str = "session"

    @property
    def total(self) -> Decimal | None:
        return None if self.unit_price is None else self.unit_price * self.quantity

    @property
    def quantity_label(self) -> str:
        unit = self.unit if self.quantity == 1 or self.unit == "mg" else f"{self.unit}s"
        return f"{self.quantity} {unit}"


@dataclass
class Estimate:
    course: TreatmentCourse
    lines: list[EstimateLine] = field(default_factory=list)
    sessions: int = 0

    @property
    def missing_prices(self) -> list[EstimateLine]:
        return [line for line in self.lines if line.unit_price is None]

    @property
    def total(self) -> Decimal:
        return sum((line.total or Decimal(0) for line in self.lines), Decimal(0))


def extra_infusion_hours(minutes: int | None) -> int:
    if not minutes or minutes <= FIRST_HOUR_MINUTES + EXTRA_HOUR_THRESHOLD_MINUTES:
        return 0
    beyond = minutes - FIRST_HOUR_MINUTES
    hours, rest = divmod(beyond, 60)
    return hours + (1 if rest > EXTRA_HOUR_THRESHOLD_MINUTES else 0)


def _kinds_for(treatment: str, appointment: Appointment) -> list[tuple[str, int, str]]:
    """(price kind, quantity, unit) for one session."""
    route = TREATMENTS[treatment].route
    if TREATMENTS[treatment].is_esketamine:
        dose = appointment.dose_mg or 0
        session = (
            PriceKind.ESKETAMINE_UP_TO_56
            if dose <= G2082_MAX_DOSE_MG
            else PriceKind.ESKETAMINE_OVER_56
        )
        return [(session, 1, "session"), (PriceKind.ESKETAMINE_DRUG_PER_MG, dose, "mg")]
    if route == "iv":
        kinds: list[tuple[str, int, str]] = [(PriceKind.IV_INFUSION, 1, "infusion")]
        extra = extra_infusion_hours(appointment.infusion_minutes)
        if extra:
            kinds.append((PriceKind.IV_EXTRA_HOUR, extra, "hour"))
        return kinds
    if route == "im":
        return [(PriceKind.IM_SESSION, 1, "session")]
    return [(PriceKind.ORAL_SESSION, 1, "session")]


def course_estimate(course: TreatmentCourse, appointments: list[Appointment]) -> Estimate:
    """Lines for the consultation and every booked session of the course (2 queries at most)."""
    prices = {item.kind: item for item in PriceItem.objects.filter(clinic_id=course.clinic_id)}
    estimate = Estimate(course)
    lines: OrderedDict[tuple[str, str], EstimateLine] = OrderedDict()

    def add(kind: str, quantity: int, unit: str, note: str = "") -> None:
        if quantity <= 0:
            return
        item = prices.get(kind)
        key = (kind, note)
        if key not in lines:
            lines[key] = EstimateLine(
                kind=kind,
                description=(item.description if item else PriceKind(kind).label)
                + (f" ({note})" if note else ""),
                billing_codes=item.billing_codes
                if item
                else DEFAULT_BILLING_CODES[PriceKind(kind)],
                quantity=0,
                unit_price=item.unit_price if item else None,
                unit=unit,
            )
        lines[key].quantity += quantity

    add(PriceKind.CONSULT, 1, "visit")
    for appointment in appointments:
        if appointment.status not in BOOKED_STATUSES:
            continue
        estimate.sessions += 1
        for kind, quantity, unit in _kinds_for(course.treatment, appointment):
            note = (
                f"{appointment.dose_mg} mg sessions"
                if kind == PriceKind.ESKETAMINE_DRUG_PER_MG
                else ""
            )
            add(kind, quantity, unit, note)
    # The drug line only where the clinic buys and bills it (a price is set).
    estimate.lines = [
        line
        for line in lines.values()
        if not (line.kind == PriceKind.ESKETAMINE_DRUG_PER_MG and line.unit_price is None)
    ]
    return estimate
