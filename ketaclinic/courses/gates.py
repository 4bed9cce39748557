"""What must be in place before a course's first session (reference §10 rules 1 and 9).

- Eligibility: not ineligible; a needs-review decision covered by a signed prescriber override.
- Consent: racemic ketamine needs the signed off-label consent; esketamine its treatment consent.
- Esketamine only: the patient's REMS enrolment is recorded and the clinic is REMS certified.

`start_blockers` answers for one course; the day board asks the same questions in bulk.
"""

from __future__ import annotations

from ketaclinic.clinical import TREATMENTS
from ketaclinic.courses.models import TreatmentCourse
from ketaclinic.screening import selectors as screening
from ketaclinic.screening.choices import ConsentKind
from ketaclinic.screening.errors import BlockReason

CONSENT_SOURCE = {
    ConsentKind.KETAMINE_OFF_LABEL: "Informed consent for off-label use: APA consensus "
    "(Sanacora 2017), ASKP3 standards (reference §2)",
    ConsentKind.ESKETAMINE: "Informed consent before treatment; Spravato REMS patient "
    "materials (reference §2, §4)",
}
REMS_PATIENT_SOURCE = (
    "Spravato REMS: patient enrolment recorded before the first dose "
    "(FDA REMS page; reference §10 rule 1) [V]"
)
REMS_SETTING_SOURCE = (
    "Spravato REMS: only certified outpatient settings may give esketamine "
    "(FDA REMS page; reference §10 rule 1) [V]"
)
ELIGIBILITY_SOURCE = "Eligibility screen (ketaclinic.clinical.assess_eligibility; reference §2)"


def consent_missing(treatment: str, kinds_in_force: set[str]) -> BlockReason | None:
    kind = screening.REQUIRED_CONSENT[treatment]
    if kind in kinds_in_force:
        return None
    return BlockReason(
        "consent_unsigned",
        f"No signed consent in force: {ConsentKind(kind).label}",
        CONSENT_SOURCE[ConsentKind(kind)],
    )


def rems_missing(treatment: str, *, enrolled: bool, clinic_certified: bool) -> list[BlockReason]:
    if not TREATMENTS[treatment].is_esketamine:
        return []
    reasons = []
    if not enrolled:
        reasons.append(
            BlockReason(
                "rems_patient_not_enrolled",
                "Patient's Spravato REMS enrolment is not recorded",
                REMS_PATIENT_SOURCE,
            )
        )
    if not clinic_certified:
        reasons.append(
            BlockReason(
                "rems_setting_not_certified",
                "This clinic's Spravato REMS certification is not on file",
                REMS_SETTING_SOURCE,
            )
        )
    return reasons


def eligibility_block(status: str, has_override: bool) -> BlockReason | None:
    if status == "ineligible":
        return BlockReason(
            "eligibility_ineligible",
            "Eligibility is now ineligible (a contraindication was recorded)",
            ELIGIBILITY_SOURCE,
        )
    if status == "needs_review" and not has_override:
        return BlockReason(
            "eligibility_needs_review",
            "Eligibility needs review and no prescriber override covers every reason",
            ELIGIBILITY_SOURCE,
        )
    if status == "not_assessed":
        return BlockReason(
            "eligibility_not_assessed", "Eligibility has not been assessed", ELIGIBILITY_SOURCE
        )
    return None


def start_blockers(course: TreatmentCourse) -> list[BlockReason]:
    """Every reason the course's first session may not start yet (empty: it may)."""
    patient = course.patient
    view = screening.eligibility_for(patient, course.treatment)
    reasons: list[BlockReason] = []
    block = eligibility_block(view.status, view.override is not None)
    if block:
        reasons.append(block)
    consent = consent_missing(
        course.treatment, screening.consents_in_force([patient.pk]).get(patient.pk, set())
    )
    if consent:
        reasons.append(consent)
    reasons += rems_missing(
        course.treatment,
        enrolled=bool(screening.rems_enrolled([patient.pk])),
        clinic_certified=course.clinic.rems_certified,
    )
    return reasons
