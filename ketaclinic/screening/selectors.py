"""Reads of intake and screening. Each runs a fixed number of queries, whatever the record count.

Other apps use the bulk helpers at the bottom (overrides, consents, REMS, last suicide-risk
check) so their lists stay free of N+1 queries.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from django.db import DEFAULT_DB_ALIAS
from django.db.models import QuerySet

from ketaclinic.accounts import access
from ketaclinic.clinical import INSTRUMENTS, TREATMENTS
from ketaclinic.clinical.eligibility import CONTRAINDICATION_FACTS
from ketaclinic.core.compiled_query import (
    PLACEHOLDER_ID,
    CompiledModelQuery,
    CompiledValuesQuery,
)
from ketaclinic.patients.models import Patient
from ketaclinic.screening import services
from ketaclinic.screening.choices import OPEN_INTAKE_STATUSES, ConsentKind, IntakeStatus
from ketaclinic.screening.facts import is_treatment_resistant
from ketaclinic.screening.models import (
    Allergy,
    AntidepressantTrial,
    BaselineMeasure,
    BaselineVitals,
    Diagnosis,
    EligibilityDecision,
    EligibilityOverride,
    Intake,
    MedicalHistory,
    Medication,
    OtherTreatment,
    PdmpCheck,
    PsychiatricHistory,
    RemsEnrolment,
    SignedConsent,
    SubstanceUse,
    TransportPlan,
)
from ketaclinic.screening.services import (
    Gap,
    clinic_today,
    consent_text_current,
    override_covering,
    screening_gaps,
)

# Medical-history conditions shown on the intake page (the two "none" answers are not).
MEDICAL_CONDITIONS = [
    name
    for name in services.MEDICAL_FIELDS
    if name not in {"takes_no_medications", "no_known_allergies", "notes"}
    and not name.endswith("_on")
]

# The consent a treatment needs before its first session: racemic ketamine is off-label.
REQUIRED_CONSENT = {
    code: ConsentKind.ESKETAMINE if treatment.is_esketamine else ConsentKind.KETAMINE_OFF_LABEL
    for code, treatment in TREATMENTS.items()
}


@dataclass
class EligibilityView:
    """The current decision for one treatment, the override covering it and the history."""

    treatment: str
    title: str
    decision: EligibilityDecision | None
    override: EligibilityOverride | None
    history: list[EligibilityDecision] = field(default_factory=list)

    @property
    def status(self) -> str:
        return self.decision.status if self.decision else "not_assessed"

    @property
    def proceed_allowed(self) -> bool:
        return self.status == "eligible" or (
            self.status == "needs_review" and self.override is not None
        )

    @property
    def changed_from(self) -> str:
        """The previous status when the newest run changed it."""
        if self.decision and self.decision.status_changed:
            return self.decision.previous_status
        return ""


def _eligibility_views(
    patient: Patient, decisions: list[EligibilityDecision], overrides: list[EligibilityOverride]
) -> list[EligibilityView]:
    by_treatment: dict[str, list[EligibilityDecision]] = defaultdict(list)
    for decision in decisions:  # newest first
        by_treatment[decision.treatment].append(decision)
    views = []
    for treatment, history in sorted(by_treatment.items()):
        current = history[0]
        own = [o for o in overrides if o.treatment == treatment]
        views.append(
            EligibilityView(
                treatment=treatment,
                title=TREATMENTS[treatment].title if treatment in TREATMENTS else treatment,
                decision=current,
                override=override_covering(current, own),
                history=history,
            )
        )
    return views


@dataclass
class IntakeSummary:
    """Everything recorded at intake for one patient, for the workspace, the chart and the API."""

    patient: Patient
    intakes: list[Intake]
    diagnoses: list[Diagnosis]
    trials: list[AntidepressantTrial]
    other_treatments: list[OtherTreatment]
    medications: list[Medication]
    allergies: list[Allergy]
    substance_use: list[SubstanceUse]
    psychiatric: PsychiatricHistory | None
    medical: MedicalHistory | None
    pdmp_checks: list[PdmpCheck]
    vitals: list[BaselineVitals]
    measures: list[BaselineMeasure]
    eligibility: list[EligibilityView]
    consents: list[SignedConsent]
    rems: RemsEnrolment | None
    transport: TransportPlan | None
    gaps: list[Gap]
    today: date

    @property
    def intake(self) -> Intake | None:
        return self.intakes[0] if self.intakes else None

    @property
    def failed_trials(self) -> int:
        return sum(1 for trial in self.trials if trial.counts_as_failed)

    @property
    def treatment_resistant(self) -> bool:
        return is_treatment_resistant(self.failed_trials, self.today, self.patient.date_of_birth)

    @property
    def latest_vitals(self) -> BaselineVitals | None:
        return self.vitals[0] if self.vitals else None

    @property
    def latest_measures(self) -> list[BaselineMeasure]:
        """The newest score of each instrument, in instrument order."""
        seen: dict[str, BaselineMeasure] = {}
        for measure in self.measures:
            seen.setdefault(measure.instrument, measure)
        order = list(INSTRUMENTS)
        return sorted(seen.values(), key=lambda m: order.index(m.instrument))

    @property
    def medical_flags(self) -> list[tuple[str, bool]]:
        """(label, is a label contraindication) of every condition ticked in the history."""
        if self.medical is None:
            return []
        flags = []
        for name in MEDICAL_CONDITIONS:
            if getattr(self.medical, name):
                label = str(MedicalHistory._meta.get_field(name).verbose_name)  # type: ignore[union-attr]
                flags.append((label, name in CONTRAINDICATION_FACTS))
        return flags

    @property
    def active_consents(self) -> list[SignedConsent]:
        return [c for c in self.consents if c.is_active]

    @property
    def required_gaps(self) -> list[Gap]:
        return [g for g in self.gaps if g.required]

    @property
    def suicide_risk_flags(self) -> list[str]:
        flags = []
        for measure in self.latest_measures:
            if "suicidal_ideation" in measure.flags and measure.instrument == "phq9":
                flags.append(f"PHQ-9 item 9 positive on {measure.administered_on:%Y-%m-%d}")
            if "high_suicide_risk" in measure.flags:
                flags.append(f"C-SSRS high risk on {measure.administered_on:%Y-%m-%d}")
        return flags


def _live(qs: QuerySet[Any]) -> list[Any]:
    """Current rows first, entered-in-error rows last (still shown, struck through)."""
    rows = list(qs)
    return sorted(rows, key=lambda r: r.entered_in_error)


def intake_summary(patient: Patient) -> IntakeSummary:
    pid = patient.pk
    decisions = list(
        EligibilityDecision.objects.filter(patient_id=pid)
        .select_related("triggered_by")
        .order_by("-decided_at", "-id")
    )
    overrides = list(
        EligibilityOverride.objects.filter(patient_id=pid).select_related("prescriber")
    )
    return IntakeSummary(
        patient=patient,
        intakes=list(
            Intake.objects.filter(patient_id=pid)
            .select_related("created_by")
            .order_by("-created_at", "-id")
        ),
        diagnoses=_live(Diagnosis.objects.filter(patient_id=pid)),
        trials=_live(AntidepressantTrial.objects.filter(patient_id=pid)),
        other_treatments=_live(OtherTreatment.objects.filter(patient_id=pid)),
        medications=_live(Medication.objects.filter(patient_id=pid)),
        allergies=_live(Allergy.objects.filter(patient_id=pid)),
        substance_use=_live(SubstanceUse.objects.filter(patient_id=pid)),
        psychiatric=PsychiatricHistory.objects.filter(patient_id=pid).first(),
        medical=MedicalHistory.objects.filter(patient_id=pid).first(),
        pdmp_checks=list(PdmpCheck.objects.filter(patient_id=pid).order_by("-checked_on", "-id")),
        vitals=list(BaselineVitals.objects.filter(patient_id=pid).order_by("-measured_on", "-id")),
        measures=list(
            BaselineMeasure.objects.filter(patient_id=pid).order_by("-administered_on", "-id")
        ),
        eligibility=_eligibility_views(patient, decisions, overrides),
        consents=list(
            SignedConsent.objects.filter(patient_id=pid)
            .select_related("consent_text", "clinician")
            .order_by("-clinician_signed_at", "-id")
        ),
        rems=RemsEnrolment.objects.filter(patient_id=pid).first(),
        transport=TransportPlan.objects.filter(patient_id=pid).first(),
        gaps=screening_gaps(patient),
        today=clinic_today(patient),
    )


def eligibility_for(patient: Patient, treatment: str) -> EligibilityView:
    """The current decision for one treatment (None if never assessed) and its override."""
    decisions = list(
        EligibilityDecision.objects.filter(patient_id=patient.pk, treatment=treatment)
        .select_related("triggered_by")
        .order_by("-decided_at", "-id")
    )
    overrides = list(
        EligibilityOverride.objects.filter(
            patient_id=patient.pk, treatment=treatment
        ).select_related("prescriber")
    )
    views = _eligibility_views(patient, decisions, overrides)
    if views:
        return views[0]
    title = TREATMENTS[treatment].title if treatment in TREATMENTS else treatment
    return EligibilityView(treatment, title, None, None)


def active_override_for(patient_id: int, treatment: str) -> EligibilityOverride | None:
    """The signed override in force for this patient and treatment, for showing at every session.

    In force means it covers every reason of the newest decision. None when the patient is
    eligible, ineligible, or needs review without a covering override.
    """
    decision = (
        EligibilityDecision.objects.filter(patient_id=patient_id, treatment=treatment)
        .order_by("-decided_at", "-id")
        .first()
    )
    return override_covering(decision) if decision is not None else None


@dataclass(frozen=True)
class EligibilityState:
    status: str
    override: EligibilityOverride | None
    reasons: tuple[str, ...]


def eligibility_states(pairs: Iterable[tuple[int, str]]) -> dict[tuple[int, str], EligibilityState]:
    """(patient id, treatment) -> newest status and covering override, in two queries."""
    wanted = set(pairs)
    if not wanted:
        return {}
    patient_ids = {pid for pid, _ in wanted}
    decisions = list(
        EligibilityDecision.objects.filter(patient_id__in=patient_ids).order_by(
            "-decided_at", "-id"
        )
    )
    newest = _newest_decisions(decisions)
    needing = {pid for (pid, _), d in newest.items() if d.status == "needs_review"}
    overrides = EligibilityOverride.objects.filter(patient_id__in=needing) if needing else ()
    return eligibility_states_from(wanted, decisions, overrides)


def _newest_decisions(
    decisions: Iterable[EligibilityDecision],
) -> dict[tuple[int, str], EligibilityDecision]:
    newest: dict[tuple[int, str], EligibilityDecision] = {}
    for decision in decisions:
        newest.setdefault((decision.patient_id, decision.treatment), decision)
    return newest


def eligibility_states_from(
    pairs: Iterable[tuple[int, str]],
    decisions: Iterable[EligibilityDecision],
    overrides: Iterable[EligibilityOverride],
) -> dict[tuple[int, str], EligibilityState]:
    """eligibility_states() from rows read already: the patients' decisions, newest first
    (-decided_at, -id), and their overrides (any that may cover a needs-review decision)."""
    newest = _newest_decisions(decisions)
    by_pair: dict[tuple[int, str], list[EligibilityOverride]] = defaultdict(list)
    for override in overrides:
        by_pair[(override.patient_id, override.treatment)].append(override)
    states = {}
    for key in set(pairs):
        found = newest.get(key)
        if found is None:
            states[key] = EligibilityState("not_assessed", None, ())
            continue
        decision = found
        states[key] = EligibilityState(
            decision.status,
            override_covering(decision, by_pair.get(key, [])),
            tuple(r["message"] for r in decision.reasons),
        )
    return states


def consents_in_force(patient_ids: Iterable[int]) -> dict[int, set[str]]:
    """Patient id -> kinds of consent signed and not withdrawn (one query)."""
    rows = SignedConsent.objects.filter(
        patient_id__in=list(patient_ids), withdrawn_at__isnull=True
    ).values_list("patient_id", "kind")
    return consents_from(rows)


def consents_from(rows: Iterable[tuple[int, str]]) -> dict[int, set[str]]:
    """consents_in_force() from (patient id, kind) of the consents in force, read already."""
    found: dict[int, set[str]] = defaultdict(set)
    for patient_id, kind in rows:
        found[patient_id].add(kind)
    return found


def rems_enrolled(patient_ids: Iterable[int]) -> set[int]:
    return set(
        RemsEnrolment.objects.filter(patient_id__in=list(patient_ids)).values_list(
            "patient_id", flat=True
        )
    )


def transport_planned(patient_ids: Iterable[int]) -> set[int]:
    return set(
        TransportPlan.objects.filter(patient_id__in=list(patient_ids)).values_list(
            "patient_id", flat=True
        )
    )


def suicide_risk_at_last_check(patient_ids: Iterable[int]) -> dict[int, str]:
    """Patient id -> alert text when the newest PHQ-9 has item 9 > 0 or the newest C-SSRS
    screener is high risk (one query)."""
    return suicide_risk_from(
        BaselineMeasure.objects.filter(
            patient_id__in=list(patient_ids), instrument__in=SUICIDE_RISK_INSTRUMENTS
        ).order_by("-administered_on", "-id")
    )


SUICIDE_RISK_INSTRUMENTS = ["phq9", "cssrs_screener"]


def suicide_risk_from(measures: Iterable[BaselineMeasure]) -> dict[int, str]:
    """suicide_risk_at_last_check() from the patients' PHQ-9 and C-SSRS screener measures read
    already, newest first (-administered_on, -id)."""
    latest: dict[tuple[int, str], BaselineMeasure] = {}
    for measure in measures:
        latest.setdefault((measure.patient_id, measure.instrument), measure)
    alerts: dict[int, str] = {}
    for (patient_id, instrument), measure in sorted(latest.items()):
        if instrument == "phq9" and "suicidal_ideation" in measure.flags:
            alerts[patient_id] = (
                f"PHQ-9 item 9 positive at last check ({measure.administered_on:%Y-%m-%d})"
            )
        elif instrument == "cssrs_screener" and "high_suicide_risk" in measure.flags:
            alerts[patient_id] = (
                f"C-SSRS high risk at last check ({measure.administered_on:%Y-%m-%d})"
            )
    return alerts


def referral_queue(
    user: Any, *, status: str = "open", clinic_id: int | None = None
) -> QuerySet[Intake]:
    """Intakes the user may see, newest referral first."""
    clinics = access.clinic_ids_for(user, "referral.manage")
    if clinic_id is not None:
        clinics = [c for c in clinics if c == clinic_id]
    qs = Intake.objects.filter(clinic_id__in=clinics).select_related("patient", "clinic")
    if status == "open":
        qs = qs.filter(status__in=OPEN_INTAKE_STATUSES)
    elif status in IntakeStatus.values:
        qs = qs.filter(status=status)
    return qs.order_by("-referred_on", "-id")


def get_intake(user: Any, intake_id: Any, permission: str = "referral.manage") -> Intake:
    """One intake of the user's clinics, or 404 (like `access.get_patient`)."""
    from django.http import Http404

    access.require(user, permission)
    try:
        pk = int(intake_id)
    except (TypeError, ValueError):
        raise Http404 from None
    intake = (
        Intake.objects.filter(pk=pk, clinic_id__in=access.clinic_ids_for(user, permission))
        .select_related("patient", "patient__clinic", "clinic")
        .first()
    )
    if intake is None:
        raise Http404
    return intake


def consent_texts_for(patient: Patient) -> dict[str, Any]:
    """The current wording of each consent form for the patient's organisation."""
    return {
        kind: consent_text_current(patient.organisation_id, kind) for kind in ConsentKind.values
    }


def get_scoped(user: Any, model: type[Any], object_id: Any, permission: str) -> Any:
    """A patient-scoped row of the user's clinics, or 404 (missing and forbidden look alike)."""
    from django.http import Http404

    access.require(user, permission)
    try:
        pk = int(object_id)
    except (TypeError, ValueError):
        raise Http404 from None
    row = (
        model.objects.filter(pk=pk, clinic_id__in=access.clinic_ids_for(user, permission))
        .select_related("patient", "patient__clinic")
        .first()
    )
    if row is None:
        raise Http404
    return row


def eligibility_now(patient: Patient, treatment: str) -> EligibilityView:
    """Eligibility for a treatment on today's facts, without writing anything.

    The stored decision when it is still current; otherwise a fresh, unsaved assessment (what
    course planning will find), with the override that would cover it.
    """
    from dataclasses import asdict

    from ketaclinic.clinical import assess_eligibility
    from ketaclinic.screening.facts import gather_facts

    stored = eligibility_for(patient, treatment)
    sheet = gather_facts(patient)
    today = clinic_today(patient)
    result = assess_eligibility(sheet.facts, treatment=treatment, as_of=today)
    reasons = [asdict(reason) for reason in result.reasons]
    current = stored.decision
    if (
        current is not None
        and current.facts_digest == sheet.digest
        and current.status == result.status
        and current.reasons == reasons
    ):
        return stored
    fresh = EligibilityDecision(
        patient=patient,
        clinic_id=patient.clinic_id,
        treatment=treatment,
        status=result.status,
        previous_status=current.status if current else "",
        reasons=reasons,
        facts=sheet.snapshot(),
        provenance=sheet.provenance,
        facts_digest=sheet.digest,
        as_of=today,
        trigger="assessed now (not yet saved)",
    )
    overrides = list(EligibilityOverride.objects.filter(patient_id=patient.pk, treatment=treatment))
    return EligibilityView(
        treatment, stored.title, fresh, override_covering(fresh, overrides), stored.history
    )


@dataclass
class ChartSummary:
    """What the chart's intake panel shows, read in three or four queries."""

    intake: Intake | None
    primary_diagnosis: str
    consent_kinds: list[str]
    rems: RemsEnrolment | None
    transport: TransportPlan | None
    eligibility: list[EligibilityView]
    latest_measures: list[BaselineMeasure]

    @property
    def suicide_risk_flags(self) -> list[str]:
        flags = []
        for measure in self.latest_measures:
            if measure.instrument == "phq9" and "suicidal_ideation" in measure.flags:
                flags.append(f"PHQ-9 item 9 positive on {measure.administered_on:%Y-%m-%d}")
            if "high_suicide_risk" in measure.flags:
                flags.append(f"C-SSRS high risk on {measure.administered_on:%Y-%m-%d}")
        return flags


_CHART_INTAKE_FIELDS = (
    "id",
    "status",
    "referral_source",
    "referred_on",
    "referring_clinician_name",
    "intended_treatment",
)


def summary_facts() -> dict[str, Any]:
    """The chart summary's one row as annotations on the patient: the latest intake, the
    primary diagnosis, the consents in force, and the REMS enrolment and ride home (every column
    of each, to rebuild them). Read with the other chart panels' facts (patients.chart)."""
    from django.db.models import Exists, F, OuterRef, Subquery

    intakes = Intake.objects.filter(patient_id=OuterRef("pk")).order_by("-created_at", "-id")
    primary = Diagnosis.objects.filter(patient_id=OuterRef("pk"), entered_in_error=False).order_by(
        "-is_primary", "id"
    )
    related = {
        f"_{prefix}_{f.attname}": F(f"{relation}__{f.attname}")
        for prefix, relation, model in _SUMMARY_RELATED
        for f in model._meta.concrete_fields
    }
    annotations: dict[str, Any] = {
        **{f"_intake_{name}": Subquery(intakes.values(name)[:1]) for name in _CHART_INTAKE_FIELDS},
        "_primary": Subquery(primary.values("icd10_code")[:1]),
        **{
            f"_consent_{kind}": Exists(
                SignedConsent.objects.filter(
                    patient_id=OuterRef("pk"), kind=kind, withdrawn_at__isnull=True
                )
            )
            for kind in ConsentKind.values
        },
        **related,
        # Most patients of a clinic have neither: the chart then skips those two reads.
        "_has_decisions": Exists(EligibilityDecision.objects.filter(patient_id=OuterRef("pk"))),
        "_has_baselines": Exists(BaselineMeasure.objects.filter(patient_id=OuterRef("pk"))),
    }
    return annotations


def _summary_query(patient_id: int) -> QuerySet[Patient]:
    annotations = summary_facts()
    return Patient.objects.filter(pk=patient_id).annotate(**annotations).values(*annotations)


_SUMMARY_RELATED = (
    ("rems", "rems_enrolment", RemsEnrolment),
    ("transport", "transport_plan", TransportPlan),
)
# A dozen subqueries and two joins: compiled to SQL once, not on every chart (core.compiled_query).
_SUMMARY = CompiledValuesQuery(_summary_query, patient_id=PLACEHOLDER_ID)
# The clinician's part of the summary, also on every chart.
_DECISIONS = CompiledModelQuery(
    lambda patient_id: EligibilityDecision.objects.filter(patient_id=patient_id).order_by(
        "-decided_at", "-id"
    ),
    patient_id=PLACEHOLDER_ID,
)
_OVERRIDES = CompiledModelQuery(
    lambda patient_id: EligibilityOverride.objects.filter(patient_id=patient_id),
    patient_id=PLACEHOLDER_ID,
)
_BASELINES = CompiledModelQuery(
    lambda patient_id: BaselineMeasure.objects.filter(patient_id=patient_id).order_by(
        "-administered_on", "-id"
    ),
    patient_id=PLACEHOLDER_ID,
)


def _related_from(row: Mapping[str, Any], prefix: str, model: Any) -> Any:
    """The one-to-one record read along in the summary row, or None when the patient has none."""
    if row[f"_{prefix}_id"] is None:
        return None
    fields = model._meta.concrete_fields
    return model.from_db(
        DEFAULT_DB_ALIAS,
        [f.attname for f in fields],
        [row[f"_{prefix}_{f.attname}"] for f in fields],
    )


def chart_reads(patient_id: int, facts: Mapping[str, Any], reads: Any) -> dict[str, Any]:
    """Ask the chart's reads (patients.chart.ChartReads) for the clinician's part of
    `chart_summary`: the decisions and baseline scores the facts say exist."""
    return {
        "decisions": reads.add(_DECISIONS, patient_id=patient_id)
        if facts["_has_decisions"]
        else None,
        "baselines": reads.add(_BASELINES, patient_id=patient_id)
        if facts["_has_baselines"]
        else None,
    }


def chart_summary(
    patient: Patient,
    *,
    clinical: bool,
    facts: Mapping[str, Any] | None = None,
    read: Mapping[str, Any] | None = None,
) -> ChartSummary:
    """One patient row with everything annotated (referral, primary diagnosis, consents, REMS,
    ride home: `facts` when the chart read them already, see `summary_facts`); clinicians also
    get the decisions, overrides when one is needed, and baseline scores (`read`: the handles
    from `chart_reads`, when the chart read them with the other panels' reads)."""
    if facts:
        row: Mapping[str, Any] = facts
    else:
        found = _SUMMARY.rows(patient_id=patient.pk)
        if not found:
            raise Patient.DoesNotExist
        row = found[0]
    intake = None
    if row["_intake_id"] is not None:
        intake = Intake(
            patient=patient,
            **{name: row[f"_intake_{name}"] for name in _CHART_INTAKE_FIELDS},
        )
    code = row["_primary"] or ""
    from ketaclinic.screening.choices import DIAGNOSES

    summary = ChartSummary(
        intake=intake,
        primary_diagnosis=f"{code} {DIAGNOSES[code].label}" if code in DIAGNOSES else code,
        consent_kinds=[k for k in ConsentKind.values if row[f"_consent_{k}"]],
        rems=_related_from(row, "rems", RemsEnrolment),
        transport=_related_from(row, "transport", TransportPlan),
        eligibility=[],
        latest_measures=[],
    )
    if not clinical:
        return summary
    newest: dict[str, EligibilityDecision] = {}
    if read is not None:
        decisions = read["decisions"].rows() if read["decisions"] is not None else []
    else:
        decisions = _DECISIONS.objects(patient_id=patient.pk) if row["_has_decisions"] else []
    for decision in decisions:
        newest.setdefault(decision.treatment, decision)
    overrides: list[EligibilityOverride] = []
    if any(d.status == "needs_review" for d in newest.values()):
        overrides = _OVERRIDES.objects(patient_id=patient.pk)
    summary.eligibility = [
        EligibilityView(
            treatment=t,
            title=TREATMENTS[t].title if t in TREATMENTS else t,
            decision=d,
            override=override_covering(d, [o for o in overrides if o.treatment == t]),
        )
        for t, d in sorted(newest.items())
    ]
    seen: dict[str, BaselineMeasure] = {}
    if read is not None:
        baselines = read["baselines"].rows() if read["baselines"] is not None else []
    else:
        baselines = _BASELINES.objects(patient_id=patient.pk) if row["_has_baselines"] else []
    for measure in baselines:
        seen.setdefault(measure.instrument, measure)
    order = list(INSTRUMENTS)
    summary.latest_measures = sorted(seen.values(), key=lambda m: order.index(m.instrument))
    return summary
