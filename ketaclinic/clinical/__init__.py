"""KetaClinic clinical rules: pure, typed functions with no Django and no project imports.

Instruments and scoring, outcomes (change, relapse), eligibility, protocols and course plans,
dosing, and session safety checks. Time is always passed in; clinic-choice defaults live in
``ClinicalSettings`` and every function that depends on one takes ``settings=``. Facts and
sources: ``shared/reference/clinical.md`` sections 1-5 and 10.
"""

from __future__ import annotations

from ketaclinic.clinical.dosing import (
    EsketamineAdministration,
    Infusion,
    esketamine_administration,
    iv_infusion,
)
from ketaclinic.clinical.eligibility import (
    ELIGIBILITY_STATUSES,
    FACT_KEYS,
    Eligibility,
    assess_eligibility,
)
from ketaclinic.clinical.errors import InvalidAnswers, InvalidInput, UnsafeOrder
from ketaclinic.clinical.instruments import (
    INSTRUMENTS,
    AnswerOption,
    Band,
    Instrument,
    Item,
    Score,
    get_instrument,
)
from ketaclinic.clinical.outcomes import (
    CHANGE_CATEGORIES,
    OutcomeCutoffs,
    classify_change,
    classify_changes,
    detect_relapse,
    outcome_cutoffs,
)
from ketaclinic.clinical.protocols import (
    PROTOCOLS,
    Phase,
    PlannedSession,
    Protocol,
    get_protocol,
    plan_course,
)
from ketaclinic.clinical.results import (
    ALERT_SEVERITIES,
    GATE_STATUSES,
    REASON_SEVERITIES,
    Alert,
    Gate,
    Reason,
)
from ketaclinic.clinical.scoring import score
from ketaclinic.clinical.settings import DEFAULT_SETTINGS, ClinicalSettings
from ketaclinic.clinical.treatments import TREATMENTS, Treatment, get_treatment
from ketaclinic.clinical.vitals import (
    VitalsReading,
    discharge_check,
    pre_dose_check,
    vitals_alerts,
    vitals_due,
)

__all__ = [
    "ALERT_SEVERITIES",
    "CHANGE_CATEGORIES",
    "DEFAULT_SETTINGS",
    "ELIGIBILITY_STATUSES",
    "FACT_KEYS",
    "GATE_STATUSES",
    "INSTRUMENTS",
    "PROTOCOLS",
    "REASON_SEVERITIES",
    "TREATMENTS",
    "Alert",
    "AnswerOption",
    "Band",
    "ClinicalSettings",
    "Eligibility",
    "EsketamineAdministration",
    "Gate",
    "Infusion",
    "Instrument",
    "InvalidAnswers",
    "InvalidInput",
    "Item",
    "OutcomeCutoffs",
    "Phase",
    "PlannedSession",
    "Protocol",
    "Reason",
    "Score",
    "Treatment",
    "UnsafeOrder",
    "VitalsReading",
    "assess_eligibility",
    "classify_change",
    "classify_changes",
    "detect_relapse",
    "discharge_check",
    "esketamine_administration",
    "get_instrument",
    "get_protocol",
    "get_treatment",
    "iv_infusion",
    "outcome_cutoffs",
    "plan_course",
    "pre_dose_check",
    "score",
    "vitals_alerts",
    "vitals_due",
]
