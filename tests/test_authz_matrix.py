"""Authorization matrix (security.md R1, R2; ARCHITECTURE rule 3), generated from the routes.

Every URL pattern (walked from the root URLconf) and every API operation (from the OpenAPI
schema) is exercised for every persona, and, where the route takes an object, for an object of the
persona's own clinic, of the other clinic and a missing one. What each combination must answer is
declared once, in MATRIX below. A route or operation without a declaration fails
`test_route` with a message saying what to add: new features must state who may use them.

Each case also checks the effect (the write happened exactly when the request succeeded) and the
audit trail (R7): a successful audited operation appends exactly one complete row, a refused one
appends none, and the hash chain still verifies.

Declaring a new route: add MATRIX["<namespace:url_name>" or "<operationId>"] with one Rule per
HTTP method; give every persona an outcome (`personas(...)`, `signed_in(...)`); routes with an
object id or a clinic in the path or body set `target=` and scope their outcomes (`scoped`,
`clinic_scoped`); writes name a `body` and an `effect`; anything touching patient data names its
`audit` action. Path parameters the runner cannot fill yet need a line in `prepare()`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import quote

import pytest
from django.forms.models import model_to_dict
from django.test import Client
from django.utils import timezone

from ketaclinic.accounts import services as account_services
from ketaclinic.accounts.models import ApiToken, Clinic, User
from ketaclinic.audit.models import AuditEvent
from ketaclinic.audit.selectors import verify_audit_chain
from ketaclinic.patients.models import Patient
from ketaclinic.patients.services import EDITABLE_FIELDS
from tests.conftest import ALL_PERSONAS, World
from tests.controlled_substances import matrix_support as cs_matrix
from tests.measures import matrix_support as measures_matrix
from tests.routes import api_operation_routes, api_operations, url_routes
from tests.screening import matrix_support as treatment_matrix
from tests.treatment_sessions import matrix_api_support as sessions_api_matrix
from tests.treatment_sessions import matrix_board_support as board_matrix
from tests.treatment_sessions import matrix_support as session_pages_matrix

# --- Outcomes -------------------------------------------------------------------------------

LOGIN_WITH_NEXT = "<login?next=path>"


@dataclass(frozen=True)
class Out:
    """An expected answer. `ok` means the operation took place: its effect and audit row exist."""

    status: int
    location: str | None = None  # exact Location, or a prefix ending in "/" for created objects
    ok: bool = True


OK = Out(200)
CREATED = Out(201)
TO_LOGIN = Out(302, LOGIN_WITH_NEXT, ok=False)
UNAUTHORIZED = Out(401, ok=False)
FORBIDDEN = Out(403, ok=False)
NOT_FOUND = Out(404, ok=False)
NOT_ALLOWED = Out(405, ok=False)
FORM_ERRORS = Out(400, ok=False)
FIELD_ERRORS = Out(422, ok=False)
TO_HOME = Out(302, "/")
TO_PATIENT_LIST = Out(302, "/patients/")
TO_PROFILE = Out(302, "/accounts/profile/")
TO_CHART = Out(302, "/patients/<id>/")  # the created or edited patient's chart
REFUSED_TO_PROFILE = Out(302, "/accounts/profile/", ok=False)
SIGNED_OUT = Out(302, "/accounts/login/")
ANON_SIGN_OUT = Out(302, "/accounts/login/", ok=False)
GONE = Out(410, ok=False)
TO_PORTAL = Out(302, "/portal/")


def scoped(own: Out, other: Out = NOT_FOUND, missing: Out = NOT_FOUND) -> dict[str, Out]:
    """Outcomes for an object of the persona's own clinic, of the other clinic, and a missing id."""
    return {"own": own, "other": other, "missing": missing}


def clinic_scoped(own: Out, other: Out, missing: Out | None = None) -> dict[str, Out]:
    """Outcomes for a request naming the persona's own clinic, the other one, or a missing one."""
    return {"own": own, "other": other, "missing": missing or other}


Outcome = Out | Mapping[str, Out]


def personas(
    *,
    writers: Outcome,
    auditor: Outcome,
    patient: Outcome,
    anonymous: Outcome,
    clinic_admin: Outcome | None = None,
) -> dict[str, Outcome]:
    """One outcome per persona. `writers` are prescriber, nurse, front desk, clinic admin and
    other_clinic_nurse (a nurse of clinic B: "own" objects are clinic B's for her)."""
    table: dict[str, Outcome] = {
        "prescriber": writers,
        "nurse": writers,
        "front_desk": writers,
        "clinic_admin": clinic_admin or writers,
        "auditor": auditor,
        "patient": patient,
        "other_clinic_nurse": writers,
        "anonymous": anonymous,
    }
    return table


def signed_in(outcome: Outcome, *, anonymous: Outcome = TO_LOGIN) -> dict[str, Outcome]:
    """The same outcome for every signed-in persona."""
    return personas(writers=outcome, auditor=outcome, patient=outcome, anonymous=anonymous)


def everyone(outcome: Outcome) -> dict[str, Outcome]:
    return signed_in(outcome, anonymous=outcome)


@dataclass(frozen=True)
class Rule:
    expect: Mapping[str, Outcome]
    # The action of the one row a success appends; a tuple when one request records several
    # (registering a patient together with their referral), the last being the checked one.
    audit: str | tuple[str, ...] | None = None
    effect: str | None = None  # what a success changes, see EFFECTS
    body: str | None = None  # the payload sent, see BODIES
    # What the own/other/missing scopes pick: "patient", "token" or "clinic" (in the path as
    # patient_id / token_id / clinic_id, or in the body for registrations).
    target: str | None = None
    auth: tuple[str, ...] = ("session",)  # API rules also run with a Bearer token
    # The object_type of the audit row when it is not the patient record itself (the row must
    # still name the patient and clinic when the target is a patient's record).
    audit_object: str | None = None


def api_rule(**kwargs: Any) -> Rule:
    return Rule(auth=("session", "token"), **kwargs)


# --- THE TABLE: every route and operation, every persona ------------------------------------

_PATIENT_PAGE = personas(
    writers=scoped(OK), auditor=scoped(OK), patient=FORBIDDEN, anonymous=TO_LOGIN
)
_STAFF_LIST = personas(writers=OK, auditor=OK, patient=FORBIDDEN, anonymous=TO_LOGIN)
_AUDIT_PAGE = personas(
    writers=FORBIDDEN, clinic_admin=OK, auditor=OK, patient=FORBIDDEN, anonymous=TO_LOGIN
)

# Measurement-based care and the portal (issue 7): clinicians (prescribers, nurses) read and act;
# plans, clinic settings and outcomes are for prescribers and administrators; patients reach
# only their own record through the portal and the API.
TO_ALERTS = Out(302, "/measures/alerts/")
REFUSED_TO_ALERTS = Out(302, "/measures/alerts/", ok=False)
TO_MEASURES_PANEL = Out(302, "/patients/{patient_id}/#panel-measures")
TO_PLAN = Out(302, "/measures/plans/{plan_id}/")
TO_PLANS = Out(302, "/measures/plans/")
TO_JOURNAL = Out(302, "/portal/journal/")
TO_OPEN_QUESTIONNAIRE = Out(302, "/portal/questionnaires/{assignment_id}/", ok=False)


def roles(
    *,
    clinicians: Outcome,
    others: Outcome,
    patient: Outcome,
    anonymous: Outcome,
    prescriber: Outcome | None = None,
    clinic_admin: Outcome | None = None,
) -> dict[str, Outcome]:
    """Clinicians are prescriber, nurse and other_clinic_nurse; others are front desk, clinic
    admin and auditor."""
    return {
        "prescriber": prescriber or clinicians,
        "nurse": clinicians,
        "other_clinic_nurse": clinicians,
        "front_desk": others,
        "clinic_admin": clinic_admin or others,
        "auditor": others,
        "patient": patient,
        "anonymous": anonymous,
    }


def _clinician_page(outcome: Outcome, refused: Outcome = FORBIDDEN) -> dict[str, Outcome]:
    return roles(clinicians=outcome, others=refused, patient=refused, anonymous=TO_LOGIN)


def _configurer_page(outcome: Outcome) -> dict[str, Outcome]:
    table = roles(clinicians=FORBIDDEN, others=FORBIDDEN, patient=FORBIDDEN, anonymous=TO_LOGIN)
    return {**table, "prescriber": outcome, "clinic_admin": outcome}


def _portal_page(outcome: Outcome) -> dict[str, Outcome]:
    return roles(clinicians=FORBIDDEN, others=FORBIDDEN, patient=outcome, anonymous=TO_LOGIN)


def _api_readers(own: Outcome, patient: Outcome, others: Outcome = FORBIDDEN) -> dict:
    return roles(clinicians=own, others=others, patient=patient, anonymous=UNAUTHORIZED)


_POST_ONLY = signed_in(NOT_ALLOWED)
_POST_ONLY_SCOPED = signed_in(scoped(NOT_ALLOWED, NOT_ALLOWED, NOT_ALLOWED))
_NOWHERE = scoped(NOT_FOUND, NOT_FOUND, NOT_FOUND)
_API_MEASURES = "ketaclinic_measures_api_"

# The controlled-substance ledger (issue 4): a permission held at no clinic is 403; a clinic (or
# its record) where it is not held is 404, like a missing one. The other clinic's nurse holds
# the nurse permissions at clinic B, so her "own" objects are clinic B's.
_CS_HOLDERS = {
    "cs.view": {"prescriber", "nurse", "clinic_admin", "auditor"},
    "cs.record": {"prescriber", "nurse"},
    "cs.stock": {"prescriber", "nurse", "clinic_admin"},
    "cs.manage": {"clinic_admin"},
    "cs.report": {"clinic_admin", "auditor"},
}
_API_CS = "ketaclinic_controlled_substances_api_"


def _cs(
    permission: str, outcome: Out, *, api: bool = False, scoped_rule: bool = True,
    **overrides: Outcome,
) -> dict[str, Outcome]:  # fmt: skip
    holders = _CS_HOLDERS[permission]
    table: dict[str, Outcome] = {}
    for persona in ALL_PERSONAS:
        holds = persona in holders or (persona == "other_clinic_nurse" and "nurse" in holders)
        if persona == "anonymous":
            table[persona] = UNAUTHORIZED if api else TO_LOGIN
        elif holds:
            table[persona] = scoped(outcome) if scoped_rule else outcome
        else:
            table[persona] = FORBIDDEN
    return {**table, **overrides}


def _cs_reverse(outcome: Out, *, api: bool = False) -> dict[str, Outcome]:
    """Reversing: administrators any entry of their clinic, others only entries they recorded
    (the matrix's entries are recorded by the clinic's nurse)."""
    not_theirs = scoped(FORBIDDEN)
    return _cs("cs.view", outcome, api=api, prescriber=not_theirs, auditor=not_theirs)


# Intake, screening, courses and scheduling (issue 5): referrals and bookings for every writer,
# clinical history for clinicians, overrides and course decisions for prescribers, clinic
# configuration for administrators. Objects: tests/screening/matrix_support.py.
_ROLE5 = {
    "prescriber": "prescriber",
    "nurse": "nurse",
    "other_clinic_nurse": "nurse",
    "front_desk": "front_desk",
    "clinic_admin": "clinic_admin",
    "auditor": "auditor",
    "patient": "patient",
}
_CLIN5 = frozenset({"prescriber", "nurse"})
_WRITE5 = _CLIN5 | {"front_desk", "clinic_admin"}
_STAFF5 = _WRITE5 | {"auditor"}
_PRESC5 = frozenset({"prescriber"})
_ADMIN5 = frozenset({"clinic_admin"})


def _t5(
    ok: Out,
    *,
    see: frozenset[str],
    act: frozenset[str] | None = None,
    api: bool = False,
    flat: bool = False,
    other: Out = NOT_FOUND,
    missing: Out = NOT_FOUND,
) -> dict[str, Outcome]:
    """Roles in `see` reach the object (others: 403 before any lookup); of those, roles in
    `act` may do it (own ok, other clinic and missing 404) and the rest get 403 on their own
    clinic's object and 404 elsewhere. `flat`: no object in the path."""
    act = see if act is None else act
    table: dict[str, Outcome] = {"anonymous": UNAUTHORIZED if api else TO_LOGIN}
    for persona, role in _ROLE5.items():
        if role not in see:
            table[persona] = FORBIDDEN
        elif flat:
            table[persona] = ok if role in act else FORBIDDEN
        elif role in act:
            table[persona] = scoped(ok, other, missing)
        else:
            table[persona] = scoped(FORBIDDEN, NOT_FOUND, NOT_FOUND)
    return table


def _to_workspace(anchor: str) -> Out:
    return Out(302, "/screening/patients/{patient_id}/#" + anchor)


_POST_ONLY5 = signed_in(scoped(NOT_ALLOWED, NOT_ALLOWED, NOT_ALLOWED))
TO_QUEUE = Out(302, "/screening/")
TO_INTAKE = Out(302, "/screening/intakes/{intake_id}/")
TO_PATIENT = Out(302, "/patients/{patient_id}/")
TO_CONSENT_TEXTS = Out(302, "/screening/consent-texts/")
TO_COURSE = Out(302, "/courses/{course_id}/")
TO_NEW_COURSE = Out(302, "/courses/<new>/")
TO_APPOINTMENT = Out(302, "/courses/appointments/{appointment_id}/")
TO_NEW_APPOINTMENT = Out(302, "/courses/appointments/<new>/")
TO_SETTINGS = Out(302, "/courses/settings/?clinic={clinic_id}")


def _page5(see: frozenset[str], **kwargs: Any) -> Rule:
    """A patient page whose GET is one audited read."""
    return Rule(_t5(OK, see=see), audit="read", target=kwargs.pop("target", "patient"), **kwargs)


def _write5(
    ok: Out,
    see: frozenset[str],
    audit: str,
    obj: str,
    effect: str,
    target: str,
    body: str | None = None,
    act: frozenset[str] | None = None,
) -> Rule:
    return Rule(
        _t5(ok, see=see, act=act),
        audit=audit,
        audit_object=obj,
        effect=effect,
        target=target,
        body=body,
    )


def _api5(
    ok: Out,
    see: frozenset[str],
    audit: str | None = None,
    obj: str | None = None,
    effect: str | None = None,
    target: str | None = None,
    body: str | None = None,
    act: frozenset[str] | None = None,
    **outs: Out,
) -> Rule:
    return api_rule(
        expect=_t5(ok, see=see, act=act, api=True, flat=target is None, **outs),
        audit=audit,
        audit_object=obj,
        effect=effect,
        target=target,
        body=body,
    )


_ITEM_MODELS5 = {
    "diagnosis": "diagnosis",
    "antidepressant-trial": "antidepressanttrial",
    "other-treatment": "othertreatment",
    "medication": "medication",
    "allergy": "allergy",
    "substance-use": "substanceuse",
}
_SCREENING_API = "ketaclinic_screening_api_"
_COURSES_API = "ketaclinic_courses_api_"

# Treatment session pages (issue 6): staff read the workspace, the note and the instructions;
# clinicians record; prescribers answer a review/hold and sign. Actions refused by the session's
# state or a gate answer 400 and write nothing. Objects: tests/treatment_sessions/matrix_support.py.
_TS = "treatment_sessions:"
_TS_OBJ = "treatment_sessions.treatmentsession"


def _ts_to(anchor: str = "") -> Out:
    return Out(302, "/sessions/{session_id}/" + anchor)


def _ts_refused(target: str, see: frozenset[str] = _CLIN5) -> dict[str, Rule]:
    """A write that an empty body (or the session's state) refuses: 400, nothing written."""
    return {
        "GET": Rule(_POST_ONLY5, target=target),
        "POST": Rule(_t5(FORM_ERRORS, see=see), target=target),
    }


def _ts_write(target: str, ok: Out, audit_object: str, effect: str, body: str | None = None,
              see: frozenset[str] = _CLIN5, audit: str = "update") -> dict[str, Rule]:  # fmt: skip
    return {
        "GET": Rule(_POST_ONLY5, target=target),
        "POST": _write5(ok, see, audit, audit_object, effect, target, body),
    }


MATRIX: dict[str, dict[str, Rule]] = {
    # Treatment session API (issue 6): staff read sessions of their clinics; nurses and
    # prescribers record; only prescribers answer a pre-dose review/hold and sign. Objects,
    # bodies and effects: tests/treatment_sessions/matrix_api_support.py.
    **{
        "ketaclinic_treatment_sessions_api_list_sessions": {
            "GET": _api5(OK, _STAFF5, "list", "treatment_sessions.treatmentsession"),
        },
        "ketaclinic_treatment_sessions_api_create_session": {
            "POST": _api5(
                CREATED, _CLIN5, "create", "treatment_sessions.treatmentsession", "ts_created",
                body="ts_create",
            ),
        },
        "ketaclinic_treatment_sessions_api_rems_worklist": {
            "GET": _api5(OK, _CLIN5, "list", "treatment_sessions.remssubmission"),
        },
        "ketaclinic_treatment_sessions_api_get_session": {
            "GET": _api5(
                OK, _STAFF5, "read", "treatment_sessions.treatmentsession", target="ts_scheduled",
            ),
        },
        "ketaclinic_treatment_sessions_api_get_note": {
            "GET": _api5(
                OK, _STAFF5, "read", "treatment_sessions.treatmentsession", target="ts_scheduled",
            ),
        },
        "ketaclinic_treatment_sessions_api_get_rems_form": {
            "GET": _api5(
                OK, _STAFF5, "read", "treatment_sessions.treatmentsession", target="ts_scheduled",
            ),
        },
        "ketaclinic_treatment_sessions_api_transition": {
            "POST": _api5(
                OK, _CLIN5, "update", "treatment_sessions.treatmentsession", "ts_checked_in",
                "ts_scheduled", "ts_check_in",
            ),
        },
        "ketaclinic_treatment_sessions_api_record_pre_dose": {
            "POST": _api5(
                CREATED, _CLIN5, "create", "treatment_sessions.predosecheck",
                "ts_pre_dose_recorded", "ts_checked_in", "ts_pre_dose",
            ),
        },
        "ketaclinic_treatment_sessions_api_acknowledge_gate": {
            "POST": _api5(
                OK, _PRESC5, "update", "treatment_sessions.predosecheck", "ts_gate_acknowledged",
                "ts_review", "ts_reason",
            ),
        },
        "ketaclinic_treatment_sessions_api_order_infusion": {
            "POST": _api5(
                CREATED, _CLIN5, "create", "treatment_sessions.infusionorder", "ts_ordered",
                "ts_gate_passed", "ts_order",
            ),
        },
        "ketaclinic_treatment_sessions_api_second_check": {
            "POST": _api5(FIELD_ERRORS, _CLIN5, target="ts_gate_passed", body="ts_checker"),
        },
        "ketaclinic_treatment_sessions_api_record_device": {
            "POST": _api5(
                CREATED, _CLIN5, "create", "treatment_sessions.esketaminedevice",
                "ts_device_recorded", "ts_esk_dosing",
            ),
        },
        "ketaclinic_treatment_sessions_api_record_administration": {
            "POST": _api5(FIELD_ERRORS, _CLIN5, target="ts_gate_passed", body="ts_administration"),
        },
        "ketaclinic_treatment_sessions_api_record_vitals": {
            "POST": _api5(
                CREATED, _CLIN5, "create", "treatment_sessions.vitalsign", "ts_reading_recorded",
                "ts_checked_in", "ts_vitals",
            ),
        },
        "ketaclinic_treatment_sessions_api_ingest_vitals": {
            "POST": _api5(
                OK, _CLIN5, "create", "treatment_sessions.vitalsign", "ts_batch_recorded",
                "ts_checked_in", "ts_batch",
            ),
        },
        "ketaclinic_treatment_sessions_api_acknowledge_alert": {
            "POST": _api5(
                OK, _CLIN5, "update", "treatment_sessions.vitalalert", "ts_alert_acknowledged",
                "ts_alert", "ts_action",
            ),
        },
        "ketaclinic_treatment_sessions_api_record_cadss": {
            "POST": _api5(
                CREATED, _CLIN5, "create", "treatment_sessions.dissociationscore",
                "ts_cadss_recorded", "ts_esk_dosing", "ts_cadss",
            ),
        },
        "ketaclinic_treatment_sessions_api_record_adverse_event": {
            "POST": _api5(
                CREATED, _CLIN5, "create", "treatment_sessions.adverseevent", "ts_event_recorded",
                "ts_checked_in", "ts_event",
            ),
        },
        "ketaclinic_treatment_sessions_api_assess_discharge": {
            "POST": _api5(
                CREATED, _CLIN5, "create", "treatment_sessions.dischargeassessment",
                "ts_discharge_assessed", "ts_esk_observing", "ts_discharge",
            ),
        },
        "ketaclinic_treatment_sessions_api_sign": {
            "POST": _api5(
                OK, _PRESC5, "update", "treatment_sessions.treatmentsession", "ts_signed",
                "ts_discharged", "ts_sign",
            ),
        },
        "ketaclinic_treatment_sessions_api_amend": {
            "POST": _api5(
                CREATED, _CLIN5, "create", "treatment_sessions.noteamendment", "ts_amended",
                "ts_signed", "ts_amend",
            ),
        },
        "ketaclinic_treatment_sessions_api_record_intervention": {
            "POST": _api5(
                CREATED, _CLIN5, "create", "treatment_sessions.intervention",
                "ts_intervention_recorded", "ts_esk_dosing", "ts_intervention",
            ),
        },
        "ketaclinic_treatment_sessions_api_record_rems_submission": {
            "POST": _api5(
                Out(409, ok=False), _CLIN5, target="ts_checked_in", body="ts_rems_submission",
            ),
        },
    },
    # pages ---------------------------------------------------------------------------------
    "core:home": {
        "GET": Rule(
            personas(writers=TO_PATIENT_LIST, auditor=TO_PATIENT_LIST, patient=TO_PORTAL,
                     anonymous=TO_LOGIN)
        ),
    },
    "core:healthz": {"GET": Rule(everyone(OK))},
    "accounts:login": {"GET": Rule(signed_in(TO_HOME, anonymous=OK))},
    "accounts:logout": {
        "GET": Rule(everyone(NOT_ALLOWED)),
        "POST": Rule(signed_in(SIGNED_OUT, anonymous=ANON_SIGN_OUT), audit="logout",
                     effect="signed_out"),
    },
    "accounts:mfa_setup": {"GET": Rule(signed_in(OK))},
    "accounts:mfa_verify": {"GET": Rule(signed_in(OK))},
    "accounts:profile": {"GET": Rule(signed_in(OK))},
    "accounts:token_create": {
        "GET": Rule(signed_in(NOT_ALLOWED)),
        "POST": Rule(signed_in(TO_PROFILE), audit="token_create", effect="token_created",
                     body="token_form"),
    },
    "accounts:token_revoke": {
        "GET": Rule(signed_in(scoped(NOT_ALLOWED, NOT_ALLOWED, NOT_ALLOWED)), target="token"),
        "POST": Rule(
            signed_in(scoped(TO_PROFILE, REFUSED_TO_PROFILE, REFUSED_TO_PROFILE)),
            audit="token_revoke", effect="token_revoked", target="token",
        ),
    },
    "patients:list": {"GET": Rule(_STAFF_LIST, audit="list")},
    "patients:create": {
        "GET": Rule(personas(writers=OK, auditor=FORBIDDEN, patient=FORBIDDEN,
                             anonymous=TO_LOGIN)),
        "POST": Rule(
            personas(writers=clinic_scoped(TO_CHART, FORM_ERRORS), auditor=FORBIDDEN,
                     patient=FORBIDDEN, anonymous=TO_LOGIN),
            audit="create", effect="patient_created", body="patient_form", target="clinic",
        ),
    },
    "patients:chart": {"GET": Rule(_PATIENT_PAGE, audit="read", target="patient")},
    "patients:edit": {
        "GET": Rule(
            personas(writers=scoped(OK), auditor=FORBIDDEN, patient=FORBIDDEN,
                     anonymous=TO_LOGIN),
            audit="read", target="patient",
        ),
        "POST": Rule(
            personas(writers=scoped(TO_CHART), auditor=FORBIDDEN, patient=FORBIDDEN,
                     anonymous=TO_LOGIN),
            audit="update", effect="patient_updated", body="patient_edit_form", target="patient",
        ),
    },
    "audit:report": {"GET": Rule(_AUDIT_PAGE, audit="list")},
    "audit:report_csv": {"GET": Rule(_AUDIT_PAGE, audit="export")},
    "api:openapi-json": {"GET": Rule(signed_in(OK))},
    "api:openapi-view": {"GET": Rule(signed_in(OK))},
    "api:api-root": {"GET": Rule(everyone(NOT_FOUND))},
    # API operations (operationId) ----------------------------------------------------------
    "ketaclinic_patients_api_list_patients": {
        "GET": api_rule(
            expect=personas(writers=OK, auditor=OK, patient=FORBIDDEN, anonymous=UNAUTHORIZED),
            audit="list",
        ),
    },
    "ketaclinic_patients_api_create_patient": {
        "POST": api_rule(
            expect=personas(writers=clinic_scoped(CREATED, FIELD_ERRORS), auditor=FORBIDDEN,
                            patient=FORBIDDEN, anonymous=UNAUTHORIZED),
            audit="create", effect="patient_created", body="patient_json", target="clinic",
        ),
    },
    "ketaclinic_patients_api_get_patient": {
        "GET": api_rule(
            expect=personas(writers=scoped(OK), auditor=scoped(OK), patient=FORBIDDEN,
                            anonymous=UNAUTHORIZED),
            audit="read", target="patient",
        ),
    },
    "ketaclinic_patients_api_update_patient": {
        "PATCH": api_rule(
            expect=personas(writers=scoped(OK), auditor=FORBIDDEN, patient=FORBIDDEN,
                            anonymous=UNAUTHORIZED),
            audit="update", effect="patient_updated", body="patient_patch", target="patient",
        ),
    },
    # Treatment session board and REMS worklist (issue 6): the board is for all staff (read
    # only); REMS forms are clinicians' work; the printable form is for all staff. Objects:
    # tests/treatment_sessions/matrix_board_support.py.
    **{
        "treatment_sessions:board": {
            "GET": Rule(_STAFF_LIST, audit="list",
                        audit_object="treatment_sessions.treatmentsession"),
        },
        "treatment_sessions:board_rows": {
            "GET": Rule(_STAFF_LIST, audit="list",
                        audit_object="treatment_sessions.treatmentsession"),
        },
        "treatment_sessions:rems_worklist": {
            "GET": Rule(_clinician_page(OK), audit="list",
                        audit_object="treatment_sessions.remssubmission"),
        },
        "treatment_sessions:rems_submit": {
            "GET": Rule(_clinician_page(scoped(OK)), audit="read", target="rems_session",
                        audit_object="treatment_sessions.treatmentsession"),
            "POST": Rule(_clinician_page(scoped(Out(302, "/sessions/rems/?clinic={clinic_id}"))),
                         audit="create", target="rems_session",
                         audit_object="treatment_sessions.remssubmission",
                         effect="rems_submitted", body="rems_submission_form"),
        },
        "treatment_sessions:rems_print": {
            "GET": Rule(personas(writers=scoped(OK), auditor=scoped(OK), patient=FORBIDDEN,
                                 anonymous=TO_LOGIN),
                        audit="print", target="rems_session",
                        audit_object="treatment_sessions.treatmentsession"),
        },
    },
    # measurement-based care: staff pages ----------------------------------------------------
    "measures:alert_inbox": {"GET": Rule(_clinician_page(OK), audit="list")},
    "measures:alert_detail": {
        "GET": Rule(_clinician_page(scoped(OK)), audit="read", target="alert",
                    audit_object="measures.safetyalert"),
        "POST": Rule(_clinician_page(scoped(TO_ALERTS)), audit="update", target="alert",
                     audit_object="measures.safetyalert", effect="alert_acknowledged",
                     body="ack_form"),
    },
    "measures:duty": {
        "GET": Rule(_POST_ONLY),
        "POST": Rule(
            {**_clinician_page(TO_ALERTS), "other_clinic_nurse": REFUSED_TO_ALERTS},
            audit="create", audit_object="measures.ondutyshift", effect="duty_started",
            body="duty_form",
        ),
    },
    "measures:booster_resolve": {
        "GET": Rule(_POST_ONLY_SCOPED, target="booster"),
        "POST": Rule(
            roles(prescriber=scoped(TO_MEASURES_PANEL), clinicians=scoped(FORBIDDEN),
                  others=FORBIDDEN, patient=FORBIDDEN, anonymous=TO_LOGIN),
            audit="update", target="booster", audit_object="measures.boosterrecommendation",
            effect="booster_resolved", body="booster_form",
        ),
    },
    "measures:enrol": {"GET": Rule(_clinician_page(scoped(OK)), audit="read", target="patient")},
    "measures:enrolment_end": {
        "GET": Rule(_POST_ONLY_SCOPED, target="enrolled_patient"),
        "POST": Rule(_clinician_page(scoped(TO_MEASURES_PANEL)), audit="update",
                     target="enrolled_patient", audit_object="measures.measurementenrolment",
                     effect="enrolment_ended", body="end_form"),
    },
    "measures:assign": {"GET": Rule(_clinician_page(scoped(OK)), audit="read", target="patient")},
    "measures:score_entry": {
        "GET": Rule(_clinician_page(scoped(OK)), audit="read", target="patient"),
    },
    "measures:response_detail": {
        "GET": Rule(_clinician_page(scoped(OK)), audit="read", target="patient_response",
                    audit_object="measures.response"),
    },
    "measures:report": {
        "GET": Rule(_clinician_page(scoped(OK)), audit="print", target="patient",
                    audit_object="measures.report"),
    },
    "measures:scores_csv": {
        "GET": Rule(_clinician_page(scoped(OK)), audit="export", target="patient",
                    audit_object="measures.response"),
    },
    "measures:shared_journal": {
        "GET": Rule(_clinician_page(scoped(OK)), audit="list", target="patient",
                    audit_object="measures.journalentry"),
    },
    "measures:plan_list": {"GET": Rule(_configurer_page(OK))},
    "measures:plan_detail": {"GET": Rule(_configurer_page(scoped(OK)), target="plan")},
    "measures:plan_item_add": {
        "GET": Rule(_POST_ONLY_SCOPED, target="plan"),
        "POST": Rule(_configurer_page(scoped(TO_PLAN)), audit="create", target="plan",
                     audit_object="measures.planitem", effect="plan_item_added",
                     body="plan_item_form"),
    },
    "measures:plan_item_retire": {
        "GET": Rule(_POST_ONLY_SCOPED, target="plan_item"),
        "POST": Rule(_configurer_page(scoped(TO_PLAN)), audit="update", target="plan_item",
                     audit_object="measures.planitem", effect="plan_item_retired"),
    },
    "measures:policy_update": {
        "GET": Rule(_POST_ONLY_SCOPED, target="clinic"),
        "POST": Rule(_configurer_page(scoped(TO_PLANS)), audit="update", target="clinic",
                     audit_object="measures.clinicmeasurepolicy", effect="policy_updated",
                     body="policy_form"),
    },
    "measures:outcomes": {"GET": Rule(_configurer_page(OK), audit="list")},
    # the patient portal --------------------------------------------------------------------
    "portal:home": {"GET": Rule(_portal_page(OK), audit="read", audit_object="portal")},
    "portal:questionnaire": {
        "GET": Rule(roles(clinicians=_NOWHERE, others=_NOWHERE, patient=scoped(OK),
                          anonymous=_NOWHERE), target="assignment"),
    },
    "portal:questionnaire_done": {
        "GET": Rule(roles(clinicians=_NOWHERE, others=_NOWHERE,
                          patient=scoped(TO_OPEN_QUESTIONNAIRE), anonymous=_NOWHERE),
                    target="assignment"),
    },
    # The one-time link is the credential: it opens its questionnaire for whoever holds it.
    "portal:link_start": {"GET": Rule(everyone(scoped(OK, OK, GONE)), target="link")},
    "portal:checkin": {"GET": Rule(_portal_page(OK), audit="read", audit_object="portal")},
    "portal:journal": {"GET": Rule(_portal_page(OK), audit="read", audit_object="portal")},
    "portal:journal_share": {
        "GET": Rule(everyone(scoped(NOT_ALLOWED, NOT_ALLOWED, NOT_ALLOWED)),
                    target="journal_entry"),
        "POST": Rule(_portal_page(scoped(TO_JOURNAL)), audit="update", target="journal_entry",
                     audit_object="measures.journalentry", effect="journal_shared",
                     body="share_form"),
    },
    "portal:progress": {"GET": Rule(_portal_page(OK), audit="read", audit_object="portal")},
    "portal:progress_report": {
        "GET": Rule(_portal_page(OK), audit="print", audit_object="measures.report"),
    },
    "portal:scores_csv": {
        "GET": Rule(_portal_page(OK), audit="export", audit_object="measures.response"),
    },
    "portal:sessions": {"GET": Rule(_portal_page(OK), audit="read", audit_object="portal")},
    "portal:aftercare": {"GET": Rule(_portal_page(OK))},
    "portal:crisis": {"GET": Rule(everyone(OK))},
    # measurement-based care: API -----------------------------------------------------------
    _API_MEASURES + "list_assignments": {
        "GET": api_rule(expect=_api_readers(OK, OK), audit="list"),
    },
    _API_MEASURES + "get_assignment": {
        "GET": api_rule(expect=_api_readers(scoped(OK), scoped(OK)), audit="read",
                        target="assignment", audit_object="measures.assignment"),
    },
    _API_MEASURES + "create_assignment": {
        "POST": api_rule(expect=_api_readers(scoped(CREATED), FORBIDDEN), audit="create",
                         target="patient", audit_object="measures.assignment",
                         effect="assignment_created", body="assign_json"),
    },
    _API_MEASURES + "list_responses": {
        "GET": api_rule(expect=_api_readers(OK, OK), audit="list"),
    },
    _API_MEASURES + "get_response": {
        "GET": api_rule(expect=_api_readers(scoped(OK), scoped(OK)), audit="read",
                        target="response", audit_object="measures.response"),
    },
    _API_MEASURES + "submit_response": {
        "POST": api_rule(expect=_api_readers(scoped(CREATED), scoped(CREATED)), audit="create",
                         target="assignment", audit_object="measures.response",
                         effect="response_created", body="submit_json"),
    },
    _API_MEASURES + "patient_scores": {
        "GET": api_rule(expect=_api_readers(scoped(OK), scoped(OK)), audit="read",
                        target="patient", audit_object="measures.scores"),
    },
    _API_MEASURES + "list_checkins": {
        "GET": api_rule(expect=_api_readers(OK, OK), audit="list"),
    },
    _API_MEASURES + "create_checkin": {
        "POST": api_rule(expect=_api_readers(FORBIDDEN, CREATED), audit="create",
                         audit_object="measures.checkin", effect="checkin_created",
                         body="checkin_json"),
    },
    _API_MEASURES + "list_alerts": {
        "GET": api_rule(expect=_api_readers(OK, FORBIDDEN), audit="list"),
    },
    _API_MEASURES + "get_alert": {
        "GET": api_rule(expect=_api_readers(scoped(OK), FORBIDDEN), audit="read", target="alert",
                        audit_object="measures.safetyalert"),
    },
    _API_MEASURES + "acknowledge_alert": {
        "POST": api_rule(expect=_api_readers(scoped(OK), FORBIDDEN), audit="update",
                         target="alert", audit_object="measures.safetyalert",
                         effect="alert_acknowledged", body="ack_json"),
    },
    # controlled-substance ledger (issue 4): pages --------------------------------------------
    "controlled_substances:index": {"GET": Rule(_cs("cs.view", OK, scoped_rule=False))},
    "controlled_substances:balances": {
        "GET": Rule(_cs("cs.view", OK), audit="list", target="clinic",
                    audit_object="controlled_substances.balance"),
    },
    "controlled_substances:ledger": {
        "GET": Rule(_cs("cs.view", OK), audit="list", target="clinic",
                    audit_object="controlled_substances.ledgerentry"),
    },
    "controlled_substances:ledger_csv": {
        "GET": Rule(_cs("cs.report", OK), audit="export", target="clinic",
                    audit_object="controlled_substances.ledgerentry"),
    },
    "controlled_substances:entry": {
        "GET": Rule(_cs("cs.view", OK), audit="read", target="cs_entry",
                    audit_object="controlled_substances.ledgerentry"),
    },
    "controlled_substances:entry_reverse": {
        "GET": Rule(_cs_reverse(OK), target="cs_entry"),
        "POST": Rule(_cs_reverse(FORM_ERRORS), target="cs_entry"),
    },
    **{
        f"controlled_substances:{name}": {
            "GET": Rule(_cs(permission, OK), target="clinic"),
            "POST": Rule(_cs(permission, FORM_ERRORS), target="clinic"),
        }
        for name, permission in (
            ("receive", "cs.stock"), ("administer", "cs.record"), ("waste", "cs.record"),
            ("transfer", "cs.stock"), ("dispose", "cs.manage"), ("adjust", "cs.manage"),
            ("loss", "cs.manage"), ("product_new", "cs.manage"), ("location_new", "cs.manage"),
        )
    },
    "controlled_substances:administer_preview": {
        "GET": Rule(_cs("cs.record", OK), target="clinic"),
    },
    "controlled_substances:counts": {"GET": Rule(_cs("cs.view", OK), target="clinic")},
    "controlled_substances:count_new": {
        "GET": Rule(_cs("cs.stock", OK), target="cs_location"),
        "POST": Rule(_cs("cs.stock", FORM_ERRORS), target="cs_location"),
    },
    "controlled_substances:count": {"GET": Rule(_cs("cs.view", OK), target="cs_count")},
    "controlled_substances:investigations": {
        "GET": Rule(_cs("cs.report", OK), audit="list", target="clinic",
                    audit_object="controlled_substances.investigation"),
        "POST": Rule(_cs("cs.report", FORM_ERRORS, auditor=scoped(FORBIDDEN)), target="clinic"),
    },
    "controlled_substances:investigation": {
        "GET": Rule(_cs("cs.report", OK), audit="read", target="cs_investigation",
                    audit_object="controlled_substances.investigation"),
        "POST": Rule(_cs("cs.report", FORM_ERRORS, auditor=scoped(FORBIDDEN)),
                     target="cs_investigation"),
    },
    "controlled_substances:reports": {"GET": Rule(_cs("cs.report", OK), target="clinic")},
    "controlled_substances:report": {
        "GET": Rule(_cs("cs.report", OK), audit="list", target="clinic",
                    audit_object="controlled_substances.report"),
    },
    "controlled_substances:report_print": {
        "GET": Rule(_cs("cs.report", OK), audit="print", target="clinic",
                    audit_object="controlled_substances.report"),
    },
    "controlled_substances:report_csv": {
        "GET": Rule(_cs("cs.report", OK), audit="export", target="clinic",
                    audit_object="controlled_substances.report"),
    },
    "controlled_substances:catalogue": {"GET": Rule(_cs("cs.view", OK), target="clinic")},
    # controlled-substance ledger: API (writes are refused by the service: nobody signs) ------
    _API_CS + "list_products": {
        "GET": api_rule(expect=_cs("cs.view", OK, api=True, scoped_rule=False)),
    },
    _API_CS + "create_product": {
        "POST": api_rule(expect=_cs("cs.manage", FIELD_ERRORS, api=True, scoped_rule=False),
                         body="cs_product"),
    },
    _API_CS + "list_balances": {
        "GET": api_rule(expect=_cs("cs.view", OK, api=True), audit="list", target="clinic",
                        audit_object="controlled_substances.balance"),
    },
    _API_CS + "list_entries": {
        "GET": api_rule(expect=_cs("cs.view", OK, api=True), audit="list", target="clinic",
                        audit_object="controlled_substances.ledgerentry"),
    },
    _API_CS + "get_entry": {
        "GET": api_rule(expect=_cs("cs.view", OK, api=True), audit="read", target="cs_entry",
                        audit_object="controlled_substances.ledgerentry"),
    },
    _API_CS + "reverse_entry": {
        "POST": api_rule(expect=_cs_reverse(FIELD_ERRORS, api=True), target="cs_entry",
                         body="cs_reversal"),
    },
    **{
        _API_CS + operation: {
            "GET": api_rule(expect=_cs(permission, OK, api=True), target="clinic"),
        }
        for operation, permission in (
            ("list_locations", "cs.view"), ("list_lots", "cs.view"), ("list_counts", "cs.view"),
            ("list_deadlines", "cs.report"),
        )
    },
    **{
        _API_CS + operation: {
            "POST": api_rule(expect=_cs(permission, FIELD_ERRORS, api=True), target="clinic",
                             body=body),
        }
        for operation, permission, body in (
            ("create_location", "cs.manage", "cs_location"),
            ("create_receipt", "cs.stock", "cs_receipt"),
            ("create_administration", "cs.record", "cs_administration"),
            ("create_waste", "cs.record", "cs_waste"),
            ("create_transfer", "cs.stock", "cs_transfer"),
            ("create_disposal", "cs.manage", "cs_disposal"),
            ("create_adjustment", "cs.manage", "cs_adjustment"),
            ("create_loss", "cs.manage", "cs_loss"),
            ("create_count", "cs.stock", "cs_count"),
            ("create_investigation", "cs.manage", "cs_investigation"),
        )
    },
    _API_CS + "get_count": {
        "GET": api_rule(expect=_cs("cs.view", OK, api=True), target="cs_count"),
    },
    _API_CS + "list_investigations": {
        "GET": api_rule(expect=_cs("cs.report", OK, api=True), audit="list", target="clinic",
                        audit_object="controlled_substances.investigation"),
    },
    _API_CS + "get_investigation": {
        "GET": api_rule(expect=_cs("cs.report", OK, api=True), audit="read",
                        target="cs_investigation",
                        audit_object="controlled_substances.investigation"),
    },
    **{
        _API_CS + operation: {
            "POST": api_rule(expect=_cs("cs.manage", FIELD_ERRORS, api=True),
                             target="cs_investigation", body=body),
        }
        for operation, body in (
            ("classify_investigation", "cs_classify"), ("investigation_notice", "cs_notice"),
            ("investigation_form_106", "cs_form_106"), ("close_investigation", "cs_close"),
        )
    },
    _API_CS + "get_report": {
        "GET": api_rule(expect=_cs("cs.report", OK, api=True), audit="export", target="clinic",
                        audit_object="controlled_substances.report"),
    },
    # intake and screening: pages ------------------------------------------------------------
    "screening:queue": {"GET": Rule(_t5(OK, see=_WRITE5, flat=True), audit="list")},
    "screening:referral_new": {
        "GET": Rule(_t5(OK, see=_WRITE5, flat=True)),
        "POST": Rule(_t5(TO_QUEUE, see=_WRITE5, other=FORM_ERRORS, missing=FORM_ERRORS),
                     audit=("create", "create"), audit_object="screening.intake",
                     effect="referral_with_patient", body="referral_new_form", target="clinic"),
    },
    "screening:referral_existing": {
        "GET": _page5(_WRITE5),
        "POST": _write5(TO_PATIENT, _WRITE5, "create", "screening.intake", "intake_created",
                        "patient", "referral_form"),
    },
    "screening:intake_edit": {
        "GET": _page5(_WRITE5, target="intake"),
        "POST": _write5(TO_INTAKE, _WRITE5, "update", "screening.intake", "intake_updated",
                        "intake", "intake_form"),
    },
    "screening:intake_status": {
        "GET": Rule(_POST_ONLY5, target="intake"),
        "POST": _write5(TO_INTAKE, _WRITE5, "update", "screening.intake", "intake_withdrawn",
                        "intake", "intake_status_form"),
    },
    "screening:workspace": {"GET": _page5(_CLIN5)},
    "screening:psychiatric": {
        "GET": _page5(_CLIN5),
        "POST": _write5(_to_workspace("psychiatric"), _CLIN5, "create",
                        "screening.psychiatrichistory", "singleton_created", "patient",
                        "psychiatric_form"),
    },
    "screening:medical": {
        "GET": _page5(_CLIN5),
        "POST": _write5(_to_workspace("medical"), _CLIN5, "create", "screening.medicalhistory",
                        "singleton_created", "patient", "medical_form"),
    },
    "screening:pdmp": {
        "GET": _page5(_CLIN5),
        "POST": _write5(_to_workspace("substance"), _CLIN5, "create", "screening.pdmpcheck",
                        "record_created", "patient", "pdmp_form"),
    },
    "screening:vitals": {
        "GET": _page5(_CLIN5),
        "POST": _write5(_to_workspace("vitals"), _CLIN5, "create", "screening.baselinevitals",
                        "record_created", "patient", "vitals_form"),
    },
    "screening:transport": {
        "GET": _page5(_WRITE5),
        "POST": _write5(TO_PATIENT, _WRITE5, "create", "screening.transportplan",
                        "singleton_created", "patient", "transport_form"),
    },
    "screening:rems": {
        "GET": _page5(_CLIN5),
        "POST": _write5(_to_workspace("consent"), _CLIN5, "create", "screening.remsenrolment",
                        "singleton_created", "patient", "rems_form"),
    },
    "screening:item_new": {
        "GET": _page5(_CLIN5),
        "POST": _write5(_to_workspace("diagnosis"), _CLIN5, "create", "screening.diagnosis",
                        "diagnosis_added", "patient", "diagnosis_form"),
    },
    "screening:item_edit": {
        "GET": _page5(_CLIN5, target="item:diagnosis"),
        "POST": _write5(_to_workspace("diagnosis"), _CLIN5, "update", "screening.diagnosis",
                        "diagnosis_changed", "item:diagnosis", "diagnosis_form"),
    },
    "screening:item_remove": {
        "GET": Rule(_POST_ONLY5, target="item:diagnosis"),
        "POST": _write5(_to_workspace("diagnosis"), _CLIN5, "update", "screening.diagnosis",
                        "diagnosis_removed", "item:diagnosis", "remove_form"),
    },
    "screening:measure_new": {
        "GET": _page5(_CLIN5),
        "POST": _write5(_to_workspace("measures"), _CLIN5, "create",
                        "screening.baselinemeasure", "record_created", "patient", "madrs_form"),
    },
    "screening:eligibility": {
        "GET": _page5(_CLIN5),
        "POST": _write5(_to_workspace("eligibility"), _CLIN5, "create",
                        "screening.eligibilitydecision", "decision_created", "patient",
                        "check_form"),
    },
    "screening:override": {
        "GET": Rule(_POST_ONLY5, target="needs_review_patient"),
        "POST": _write5(_to_workspace("eligibility"), _CLIN5, "create",
                        "screening.eligibilityoverride", "override_created",
                        "needs_review_patient", "override_form", act=_PRESC5),
    },
    "screening:consent": {
        "GET": _page5(_CLIN5),
        "POST": _write5(_to_workspace("consent"), _CLIN5, "create", "screening.signedconsent",
                        "consent_created", "patient", "consent_form"),
    },
    "screening:consent_withdraw": {
        "GET": Rule(_POST_ONLY5, target="consent"),
        "POST": _write5(_to_workspace("consent"), _CLIN5, "update", "screening.signedconsent",
                        "consent_withdrawn", "consent", "remove_form"),
    },
    "screening:consent_texts": {
        "GET": Rule(_t5(OK, see=_ADMIN5, flat=True)),
        "POST": Rule(_t5(TO_CONSENT_TEXTS, see=_ADMIN5, flat=True), audit="create",
                     audit_object="screening.consenttext", effect="consent_text_created",
                     body="consent_text_form"),
    },
    # courses and scheduling: pages ----------------------------------------------------------
    "courses:list": {"GET": Rule(_t5(OK, see=_STAFF5, flat=True), audit="list")},
    "courses:board": {"GET": Rule(_t5(OK, see=_WRITE5, flat=True), audit="list")},
    "courses:settings": {
        "GET": Rule(_t5(OK, see=_ADMIN5, flat=True)),
        "POST": _write5(TO_SETTINGS, _ADMIN5, "create", "courses.clinicschedule",
                        "schedule_created", "clinic", "schedule_form"),
    },
    "courses:create": {
        "GET": _page5(_PRESC5, target="plannable_patient"),
        "POST": _write5(TO_NEW_COURSE, _PRESC5, "create", "courses.treatmentcourse",
                        "course_created", "plannable_patient", "course_form"),
    },
    "courses:detail": {"GET": _page5(_STAFF5, target="course")},
    "courses:status": {
        "GET": Rule(_POST_ONLY5, target="course"),
        "POST": _write5(TO_COURSE, _STAFF5, "update", "courses.treatmentcourse",
                        "course_stopped", "course", "stop_form", act=_PRESC5),
    },
    "courses:goal_add": {
        "GET": Rule(_POST_ONLY5, target="course"),
        "POST": _write5(TO_COURSE, _STAFF5, "create", "courses.coursegoal", "goal_created",
                        "course", "goal_form", act=_PRESC5),
    },
    "courses:booster": {
        "GET": Rule(_POST_ONLY5, target="course"),
        "POST": _write5(TO_COURSE, _STAFF5, "create", "courses.appointment",
                        "appointment_booked", "course", "course_booster_form", act=_PRESC5),
    },
    "courses:maintenance": {
        "GET": _page5(_PRESC5, target="active_course"),
        "POST": _write5(TO_COURSE, _PRESC5, "update", "courses.treatmentcourse",
                        "course_in_maintenance", "active_course", "maintenance_form"),
    },
    "courses:estimate": {
        "GET": Rule(_t5(OK, see=_STAFF5), audit="print", target="course"),
    },
    "courses:appointment": {"GET": _page5(_WRITE5, target="appointment")},
    "courses:reschedule": {
        "GET": Rule(_POST_ONLY5, target="appointment"),
        "POST": _write5(TO_NEW_APPOINTMENT, _WRITE5, "create", "courses.appointment",
                        "appointment_moved", "appointment", "reschedule_form"),
    },
    "courses:cancel": {
        "GET": Rule(_POST_ONLY5, target="appointment"),
        "POST": _write5(TO_APPOINTMENT, _WRITE5, "update", "courses.appointment",
                        "appointment_cancelled", "appointment", "remove_form"),
    },
    "courses:missed": {
        "GET": Rule(_POST_ONLY5, target="past_appointment"),
        "POST": _write5(TO_APPOINTMENT, _WRITE5, "update", "courses.appointment",
                        "appointment_missed", "past_appointment", "remove_form"),
    },
    "courses:complete": {
        "GET": Rule(_POST_ONLY5, target="past_appointment"),
        "POST": _write5(TO_APPOINTMENT, _WRITE5, "update", "courses.appointment",
                        "appointment_given", "past_appointment", act=_CLIN5),
    },
    "courses:dose": {
        "GET": Rule(_POST_ONLY5, target="appointment"),
        "POST": _write5(TO_APPOINTMENT, _WRITE5, "update", "courses.appointment",
                        "dose_changed", "appointment", "dose_form", act=_PRESC5),
    },
    # intake and screening: API --------------------------------------------------------------
    _SCREENING_API + "list_referrals": {"GET": _api5(OK, _WRITE5, "list")},
    _SCREENING_API + "create_referral": {
        "POST": _api5(CREATED, _WRITE5, "create", "screening.intake", "intake_created",
                      "patient", "referral_json"),
    },
    _SCREENING_API + "get_intake": {"GET": _api5(OK, _WRITE5, "read", target="intake")},
    _SCREENING_API + "update_intake": {
        "PATCH": _api5(OK, _WRITE5, "update", "screening.intake", "intake_updated", "intake",
                       "intake_patch"),
    },
    _SCREENING_API + "change_intake_status": {
        "POST": _api5(OK, _WRITE5, "update", "screening.intake", "intake_withdrawn", "intake",
                      "intake_status_form"),
    },
    _SCREENING_API + "get_intake_summary": {"GET": _api5(OK, _CLIN5, "read", target="patient")},
    _SCREENING_API + "put_psychiatric": {
        "PUT": _api5(OK, _CLIN5, "create", "screening.psychiatrichistory", "singleton_created",
                     "patient", "empty_json"),
    },
    _SCREENING_API + "put_medical": {
        "PUT": _api5(OK, _CLIN5, "create", "screening.medicalhistory", "singleton_created",
                     "patient", "medical_json"),
    },
    **{
        f"screening_add_{kind.replace('-', '_')}": {
            "POST": _api5(CREATED, _CLIN5, "create", f"screening.{model}", f"{kind}_added",
                          "patient", f"add_{kind}_json"),
        }
        for kind, model in _ITEM_MODELS5.items()
    },
    **{
        f"screening_update_{kind.replace('-', '_')}": {
            "PUT": _api5(OK, _CLIN5, "update", f"screening.{model}", f"{kind}_replaced",
                         f"item:{kind}", f"put_{kind}_json"),
        }
        for kind, model in _ITEM_MODELS5.items()
    },
    **{
        f"screening_remove_{kind.replace('-', '_')}": {
            "POST": _api5(OK, _CLIN5, "update", f"screening.{model}", f"{kind}_removed",
                          f"item:{kind}", "reason_json"),
        }
        for kind, model in _ITEM_MODELS5.items()
    },
    _SCREENING_API + "add_pdmp": {
        "POST": _api5(CREATED, _CLIN5, "create", "screening.pdmpcheck", "record_created",
                      "patient", "pdmp_json"),
    },
    _SCREENING_API + "add_vitals": {
        "POST": _api5(CREATED, _CLIN5, "create", "screening.baselinevitals", "record_created",
                      "patient", "vitals_json"),
    },
    _SCREENING_API + "add_measure": {
        "POST": _api5(CREATED, _CLIN5, "create", "screening.baselinemeasure", "record_created",
                      "patient", "measure_json"),
    },
    _SCREENING_API + "get_eligibility": {"GET": _api5(OK, _CLIN5, "read", target="patient")},
    _SCREENING_API + "check_eligibility": {
        "POST": _api5(OK, _CLIN5, "create", "screening.eligibilitydecision", "decision_created",
                      "patient", "check_json"),
    },
    _SCREENING_API + "sign_override": {
        "POST": _api5(CREATED, _CLIN5, "create", "screening.eligibilityoverride",
                      "override_created", "needs_review_patient", "override_json",
                      act=_PRESC5),
    },
    _SCREENING_API + "sign_consent": {
        "POST": _api5(CREATED, _CLIN5, "create", "screening.signedconsent", "consent_created",
                      "patient", "consent_json"),
    },
    _SCREENING_API + "withdraw_consent": {
        "POST": _api5(OK, _CLIN5, "update", "screening.signedconsent", "consent_withdrawn",
                      "consent", "reason_json"),
    },
    _SCREENING_API + "put_rems": {
        "PUT": _api5(OK, _CLIN5, "create", "screening.remsenrolment", "singleton_created",
                     "patient", "rems_json"),
    },
    _SCREENING_API + "put_transport": {
        "PUT": _api5(OK, _WRITE5, "create", "screening.transportplan", "singleton_created",
                     "patient", "transport_json"),
    },
    # courses and scheduling: API ------------------------------------------------------------
    _COURSES_API + "list_protocols": {"GET": _api5(OK, _STAFF5)},
    _COURSES_API + "get_board": {"GET": _api5(OK, _WRITE5, "list")},
    _COURSES_API + "list_chairs": {"GET": _api5(OK, _WRITE5)},
    _COURSES_API + "create_chair": {
        "POST": _api5(CREATED, _ADMIN5, "create", "courses.chair", "chair_created", "clinic",
                      "chair_json", other=FIELD_ERRORS, missing=FIELD_ERRORS),
    },
    _COURSES_API + "get_appointment": {
        "GET": _api5(OK, _WRITE5, "read", target="appointment"),
    },
    _COURSES_API + "reschedule": {
        "POST": _api5(CREATED, _WRITE5, "create", "courses.appointment", "appointment_moved",
                      "appointment", "reschedule_form"),
    },
    _COURSES_API + "cancel": {
        "POST": _api5(OK, _WRITE5, "update", "courses.appointment", "appointment_cancelled",
                      "appointment", "reason_json"),
    },
    _COURSES_API + "missed": {
        "POST": _api5(OK, _WRITE5, "update", "courses.appointment", "appointment_missed",
                      "past_appointment", "reason_json"),
    },
    _COURSES_API + "complete": {
        "POST": _api5(OK, _WRITE5, "update", "courses.appointment", "appointment_given",
                      "past_appointment", act=_CLIN5),
    },
    _COURSES_API + "change_dose": {
        "POST": _api5(OK, _WRITE5, "update", "courses.appointment", "dose_changed",
                      "appointment", "dose_json", act=_PRESC5),
    },
    _COURSES_API + "list_courses": {"GET": _api5(OK, _STAFF5, "list")},
    _COURSES_API + "create_course": {
        "POST": _api5(CREATED, _PRESC5, "create", "courses.treatmentcourse", "course_created",
                      "plannable_patient", "course_json"),
    },
    _COURSES_API + "get_course": {"GET": _api5(OK, _STAFF5, "read", target="course")},
    _COURSES_API + "start_course": {
        "POST": _api5(OK, _STAFF5, "update", "courses.treatmentcourse", "course_started",
                      "course", act=_CLIN5),
    },
    _COURSES_API + "change_course_status": {
        "POST": _api5(OK, _STAFF5, "update", "courses.treatmentcourse", "course_stopped",
                      "course", "stop_form", act=_PRESC5),
    },
    _COURSES_API + "start_maintenance": {
        "POST": _api5(OK, _PRESC5, "update", "courses.treatmentcourse",
                      "course_in_maintenance", "active_course", "maintenance_form"),
    },
    _COURSES_API + "add_booster": {
        "POST": _api5(CREATED, _STAFF5, "create", "courses.appointment", "appointment_booked",
                      "course", "course_booster_form", act=_PRESC5),
    },
    _COURSES_API + "add_goal": {
        "POST": _api5(CREATED, _STAFF5, "create", "courses.coursegoal", "goal_created",
                      "course", "goal_json", act=_PRESC5),
    },
    _COURSES_API + "get_estimate": {"GET": _api5(OK, _STAFF5, "export", target="course")},
    # Treatment session pages (issue 6)
    **{
        _TS + "workspace": {"GET": _page5(_STAFF5, target="tsp_dosing", audit_object=_TS_OBJ)},
        _TS + "note": {"GET": _page5(_STAFF5, target="tsp_signed", audit_object=_TS_OBJ)},
        _TS + "instructions": {
            "GET": Rule(_t5(OK, see=_STAFF5), audit="print", target="tsp_observing",
                        audit_object=_TS_OBJ),
        },
        _TS + "for_appointment": {
            "GET": _page5(_CLIN5, target="appointment", audit_object="courses.appointment"),
            "POST": _write5(Out(302, "/sessions/<new>/"), _CLIN5, "create", _TS_OBJ,
                            "tsp_session_created", "appointment"),
        },
        _TS + "check_in": _ts_write("tsp_scheduled", _ts_to("#gate"), _TS_OBJ, "tsp_checked_in"),
        _TS + "pre_dose": _ts_write("tsp_checked_in", _ts_to("#gate"),
                                    "treatment_sessions.predosecheck", "tsp_pre_dose_recorded",
                                    "tsp_pre_dose_form", audit="create"),
        _TS + "acknowledge_gate": _ts_refused("tsp_checked_in", see=_PRESC5),
        _TS + "pass_gate": _ts_refused("tsp_checked_in"),
        _TS + "order": _ts_refused("tsp_gate_passed"),
        _TS + "order_preview": {"GET": Rule(_t5(OK, see=_CLIN5), target="tsp_gate_passed")},
        _TS + "second_check": _ts_refused("tsp_gate_passed"),
        _TS + "draw": _ts_refused("tsp_gate_passed"),
        _TS + "start_dosing": _ts_refused("tsp_gate_passed"),
        _TS + "device": _ts_refused("tsp_dosing"),
        _TS + "observe": _ts_refused("tsp_dosing"),
        _TS + "vitals": _ts_write("tsp_dosing", _ts_to("#monitoring"),
                                  "treatment_sessions.vitalsign", "tsp_vitals_recorded",
                                  "tsp_vitals_form", audit="create"),
        _TS + "acknowledge_alert": _ts_refused("tsp_alert"),
        _TS + "cadss": _ts_refused("tsp_dosing"),
        _TS + "intervention": _ts_refused("tsp_dosing"),
        _TS + "adverse_event": _ts_refused("tsp_dosing"),
        _TS + "assess_discharge": _ts_refused("tsp_observing"),
        _TS + "ready": _ts_refused("tsp_observing"),
        _TS + "discharge": _ts_refused("tsp_observing"),
        _TS + "sign": _ts_write("tsp_discharged", Out(302, "/sessions/{session_id}/note/"), _TS_OBJ,
                                "tsp_signed", "tsp_sign_form", see=_PRESC5),
        _TS + "amend": _ts_refused("tsp_signed"),
        _TS + "cancel": _ts_write("tsp_scheduled", _ts_to(), _TS_OBJ, "tsp_cancelled",
                                  "tsp_reason_form"),
        _TS + "stop_early": _ts_refused("tsp_checked_in"),
    },
}  # fmt: skip

# Patient-data routes: a success must leave a row naming the patient and its clinic.
PATIENT_AUDIT_ACTIONS = {"read", "create", "update"}


# --- Discovery: the cases come from the routes, not from the table --------------------------


@dataclass(frozen=True)
class Endpoint:
    key: str
    method: str | None  # None for URL patterns: the table says which methods to send
    params: tuple[str, ...]
    path_of: Callable[..., str] = field(compare=False)
    is_api_operation: bool = False


def discovered_endpoints() -> list[Endpoint]:
    covered_by_schema = api_operation_routes()
    endpoints = [
        Endpoint(r.key, None, r.params, r.path)
        for r in url_routes()
        if r.route not in covered_by_schema
    ]
    endpoints += [Endpoint(op.key, op.method, op.params, op.path, True) for op in api_operations()]
    return endpoints


@dataclass(frozen=True)
class Case:
    endpoint: Endpoint
    method: str
    persona: str
    scope: str
    auth: str

    @property
    def id(self) -> str:
        parts = [self.endpoint.key, self.method, self.persona]
        if self.scope != "-":
            parts.append(self.scope)
        if self.auth != "session":
            parts.append(self.auth)
        return "|".join(parts)


@dataclass(frozen=True)
class Undeclared:
    key: str
    problem: str


def scopes_of(rule: Rule) -> tuple[str, ...]:
    if rule.target is not None:
        return ("own", "other", "missing")
    return ("-",)


def _cases() -> list[Any]:
    params = []
    for endpoint in discovered_endpoints():
        rules = MATRIX.get(endpoint.key)
        if not rules:
            missing = Undeclared(endpoint.key, "has no declared expectation")
            params.append(pytest.param(missing, id=f"UNDECLARED|{endpoint.key}"))
            continue
        for method, rule in rules.items():
            if endpoint.method is not None and method != endpoint.method:
                wrong = Undeclared(
                    endpoint.key, f"declares {method}; the schema says {endpoint.method}"
                )
                params.append(pytest.param(wrong, id=f"WRONG-METHOD|{endpoint.key}|{method}"))
                continue
            for persona in ALL_PERSONAS:
                auths = ("none",) if persona == "anonymous" else rule.auth
                for scope in scopes_of(rule):
                    for auth in auths:
                        case = Case(endpoint, method, persona, scope, auth)
                        params.append(pytest.param(case, id=case.id))
    return params


# --- Running one case -----------------------------------------------------------------------

NEW_PHONE = "+1 617 555 0199"
NEW_LAST_NAME = "Matrixregistered"


@dataclass
class Ctx:
    """What a case needs: the persona, the object the scope picks, and the client."""

    world: World
    persona: str
    user: User | None
    client: Client
    headers: dict[str, str]
    patient: Patient | None = None
    patient_id: int | None = None
    token: ApiToken | None = None
    token_id: int | None = None
    clinic: Clinic | None = None
    clinic_id: int | None = None
    values: dict[str, Any] = field(default_factory=dict)  # other path parameters


def home_clinic(world: World, persona: str) -> Clinic:
    return world.clinic_b if persona == "other_clinic_nurse" else world.clinic_a


def other_clinic(world: World, persona: str) -> Clinic:
    return world.clinic_a if persona == "other_clinic_nurse" else world.clinic_b


def _token_of(user: User) -> tuple[ApiToken, str]:
    return account_services.api_token_create(actor=user, name="matrix", days=30)


def prepare(case: Case, world: World, client_for: Callable[..., Client]) -> Ctx:
    persona = case.persona
    user = world.users.get(persona)
    headers: dict[str, str] = {}
    if case.auth == "token":
        assert user is not None
        _, raw = _token_of(user)
        client = Client()
        headers["Authorization"] = f"Bearer {raw}"
    else:
        client = client_for(persona)
    ctx = Ctx(world, persona, user, client, headers)
    rule = MATRIX[case.endpoint.key][case.method]
    if rule.target == "patient":
        if case.scope == "own":
            if persona == "patient":
                ctx.patient = world.patient_a  # the patient's own record
            elif persona == "other_clinic_nurse":
                ctx.patient = world.patient_b
            else:
                ctx.patient = world.patient_a2
        elif case.scope == "other":
            ctx.patient = world.patient_a2 if persona == "other_clinic_nurse" else world.patient_b
        ctx.patient_id = ctx.patient.pk if ctx.patient else _missing_id(Patient)
    elif rule.target == "token":
        owner = user if user is not None else world.users["nurse"]
        if case.scope == "other":
            owner = world.users["nurse" if persona == "prescriber" else "prescriber"]
        if case.scope != "missing":
            ctx.token, _ = _token_of(owner)
        ctx.token_id = ctx.token.pk if ctx.token else _missing_id(ApiToken)
    elif rule.target == "clinic":
        if case.scope != "missing":
            ctx.clinic = (home_clinic if case.scope == "own" else other_clinic)(world, persona)
        ctx.clinic_id = ctx.clinic.pk if ctx.clinic else _missing_id(Clinic)
    elif rule.target in measures_matrix.TARGETS:
        measures_matrix.fill(rule.target, case.scope, persona, world, ctx)
    elif rule.target in cs_matrix.TARGETS:
        cs_matrix.fill(rule.target, case.scope, persona, world, ctx)
    elif rule.target in treatment_matrix.TARGETS:
        treatment_matrix.fill(rule.target, case.scope, persona, world, ctx)
    elif rule.target in board_matrix.TARGETS:
        board_matrix.fill(rule.target, case.scope, persona, world, ctx)
    elif rule.target in sessions_api_matrix.TARGETS:
        sessions_api_matrix.fill(rule.target, case.scope, persona, world, ctx)
    elif rule.target in session_pages_matrix.TARGETS:
        session_pages_matrix.fill(rule.target, case.scope, persona, world, ctx)
    return ctx


def _missing_id(model: type[Any]) -> int:
    last = model.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
    return last + 1000


def _patient_form(ctx: Ctx) -> dict[str, Any]:
    return {
        "clinic": ctx.clinic_id,
        "mrn": "",
        "first_name": "Morgan",
        "last_name": NEW_LAST_NAME,
        "date_of_birth": "1990-05-17",
        "sex_at_birth": "female",
        "phone": "+1 617 555 0142",
    }


def _patient_edit_form(ctx: Ctx) -> dict[str, Any]:
    source = ctx.patient or ctx.world.patient_a2
    data = model_to_dict(source, fields=EDITABLE_FIELDS)
    data = {k: (v.isoformat() if isinstance(v, date) else v) for k, v in data.items()}
    data["phone"] = NEW_PHONE
    return data


def _patient_json(ctx: Ctx) -> dict[str, Any]:
    return {
        "clinic_id": ctx.clinic_id,
        "first_name": "Morgan",
        "last_name": NEW_LAST_NAME,
        "date_of_birth": "1990-05-17",
    }


BODIES: dict[str, Callable[[Ctx], dict[str, Any]]] = {
    "token_form": lambda ctx: {"name": "matrix form token", "days": 30},
    "patient_form": _patient_form,
    "patient_edit_form": _patient_edit_form,
    "patient_json": _patient_json,
    "patient_patch": lambda ctx: {"phone": NEW_PHONE},
    **measures_matrix.bodies(),
    **cs_matrix.bodies(),
    **treatment_matrix.bodies(),
    **board_matrix.bodies(),
    **sessions_api_matrix.bodies(),
    **session_pages_matrix.bodies(),
}


def send(case: Case, ctx: Ctx) -> Any:
    rule = MATRIX[case.endpoint.key][case.method]
    values = {
        "patient_id": ctx.patient_id,
        "token_id": ctx.token_id,
        "clinic_id": ctx.clinic_id,
        **measures_matrix.FIXED_VALUES,
        **cs_matrix.FIXED_VALUES,
        **treatment_matrix.FIXED_VALUES,
        **ctx.values,
    }
    missing = set(case.endpoint.params) - {k for k, v in values.items() if v is not None}
    assert not missing, f"the matrix does not know how to fill {missing} in {case.endpoint.key}"
    path = case.endpoint.path_of(**{p: values[p] for p in case.endpoint.params})
    body = BODIES[rule.body](ctx) if rule.body else None
    if case.endpoint.is_api_operation:
        return path, ctx.client.generic(
            case.method,
            path,
            data=b"" if body is None else json.dumps(body),
            content_type="application/json",
            headers=ctx.headers,
        )
    if case.method == "POST":
        return path, ctx.client.post(path, body or {}, headers=ctx.headers)
    return path, ctx.client.generic(case.method, path, headers=ctx.headers)


def state() -> dict[str, Any]:
    return {
        "patients": sorted(
            Patient.objects.values_list("pk", "clinic_id", "last_name", "phone", "mrn")
        ),
        "tokens": sorted(ApiToken.objects.values_list("pk", "user_id", "revoked_at")),
        "measures": measures_matrix.state(),
        "controlled_substances": cs_matrix.state(),
        treatment_matrix.KEY: treatment_matrix.state(),
        board_matrix.KEY: board_matrix.state(),
        sessions_api_matrix.KEY: sessions_api_matrix.state(),
        session_pages_matrix.KEY: session_pages_matrix.state(),
    }


def _effect_patient_created(before: dict, after: dict, ctx: Ctx, response: Any) -> None:
    new = sorted(set(after["patients"]) - set(before["patients"]))
    assert len(new) == 1 and set(before["patients"]) <= set(after["patients"]), new
    _, clinic_id, last_name, _, mrn = new[0]
    assert (clinic_id, last_name) == (ctx.clinic_id, NEW_LAST_NAME)
    assert mrn, "an MRN is issued"
    assert after["tokens"] == before["tokens"]


def _effect_patient_updated(before: dict, after: dict, ctx: Ctx, response: Any) -> None:
    assert ctx.patient is not None
    changed = sorted(set(after["patients"]) - set(before["patients"]))
    assert [(row[0], row[3]) for row in changed] == [(ctx.patient.pk, NEW_PHONE)]
    assert len(after["patients"]) == len(before["patients"])
    assert after["tokens"] == before["tokens"]


def _effect_token_created(before: dict, after: dict, ctx: Ctx, response: Any) -> None:
    new = sorted(set(after["tokens"]) - set(before["tokens"]))
    assert len(new) == 1 and new[0][1] == ctx.user.pk, new  # type: ignore[union-attr]
    assert after["patients"] == before["patients"]


def _effect_token_revoked(before: dict, after: dict, ctx: Ctx, response: Any) -> None:
    assert ctx.token is not None
    revoked = [t for t in after["tokens"] if t[2] is not None]
    assert [t[0] for t in revoked] == [ctx.token.pk]
    assert after["patients"] == before["patients"]


def _effect_signed_out(before: dict, after: dict, ctx: Ctx, response: Any) -> None:
    assert "_auth_user_id" not in ctx.client.session
    assert after == before


EFFECTS = {
    "patient_created": _effect_patient_created,
    "patient_updated": _effect_patient_updated,
    "token_created": _effect_token_created,
    "token_revoked": _effect_token_revoked,
    "signed_out": _effect_signed_out,
    **measures_matrix.effects(),
    **treatment_matrix.effects(),
    **board_matrix.effects(),
    **sessions_api_matrix.effects(),
    **session_pages_matrix.effects(),
}


def expected_outcome(rule: Rule, persona: str, scope: str) -> Out:
    outcome = rule.expect[persona]
    if isinstance(outcome, Out):
        return outcome
    return outcome[scope]


def check_location(expected: Out, path: str, response: Any, ctx: Ctx) -> None:
    location = response.get("Location")
    if expected.location is None:
        assert location is None, f"unexpected redirect to {location}"
    elif expected.location == LOGIN_WITH_NEXT:
        assert location == f"/accounts/login/?next={quote(path)}"
    elif expected.location == TO_CHART.location:
        patient = ctx.patient or Patient.objects.get(last_name=NEW_LAST_NAME)
        assert location == f"/patients/{patient.pk}/"
    elif expected.location.endswith("<new>/"):  # a created object's page
        prefix = expected.location.removesuffix("<new>/")
        assert location.startswith(prefix) and location[len(prefix) : -1].isdigit(), location
    elif "{" in expected.location:  # e.g. "/measures/plans/{plan_id}/"
        ids = {"patient_id": ctx.patient_id, "clinic_id": ctx.clinic_id, **ctx.values}
        assert location == expected.location.format(**ids)
    else:
        assert location == expected.location


def check_audit(
    rule: Rule, expected: Out, ctx: Ctx, response: Any, since_seq: int, started: datetime
) -> None:
    events = list(AuditEvent.objects.filter(seq__gt=since_seq).order_by("seq"))
    if not (rule.audit and expected.ok):
        assert events == [], f"no audit row expected, got {[e.action for e in events]}"
        return
    actions = list(rule.audit) if isinstance(rule.audit, tuple) else [rule.audit]
    assert [e.action for e in events] == actions, "exactly the declared audit row(s)"
    event = events[-1]
    assert ctx.user is not None
    assert event.user_id == ctx.user.pk
    assert event.username == ctx.user.username
    assert event.request_id and event.request_id == response["X-Request-ID"]
    assert event.source_ip == "127.0.0.1"
    assert event.occurred_at.utcoffset() == timedelta(0), "stored and read back in UTC"
    assert started <= event.occurred_at <= timezone.now()
    assert event.object_type
    assert event.entry_hash and event.prev_hash
    if rule.audit_object is not None:
        assert event.object_type == rule.audit_object
        if ctx.patient is not None:
            assert (event.patient_id, event.clinic_id) == (ctx.patient.pk, ctx.patient.clinic_id)
        return
    if rule.audit in PATIENT_AUDIT_ACTIONS:
        patient = ctx.patient or Patient.objects.get(last_name=NEW_LAST_NAME)
        assert event.patient_id == patient.pk
        assert event.clinic_id == patient.clinic_id
        assert (event.object_type, event.object_id) == ("patients.patient", str(patient.pk))
    if rule.audit == "update":
        assert event.changes == {"phone": {"old": ctx.patient.phone, "new": NEW_PHONE}}  # type: ignore[union-attr]
    if rule.audit == "create":
        assert event.changes["last_name"] == {"old": None, "new": NEW_LAST_NAME}


# --- The tests --------------------------------------------------------------------------------


@pytest.mark.parametrize("case", _cases())
def test_route(case: Any, world: World, client_for: Callable[..., Client]) -> None:
    if isinstance(case, Undeclared):
        pytest.fail(
            f"{case.key} {case.problem}. Declare it in MATRIX in {__name__} with the outcome "
            "for every persona (and own/other/missing objects): see the module docstring."
        )
    rule = MATRIX[case.endpoint.key][case.method]
    expected = expected_outcome(rule, case.persona, case.scope)
    ctx = prepare(case, world, client_for)
    before = state()
    since_seq = AuditEvent.objects.order_by("-seq").values_list("seq", flat=True).first() or 0
    started = datetime.now(UTC)

    path, response = send(case, ctx)

    assert response.status_code == expected.status, (
        f"{case.id}: {case.method} {path} answered {response.status_code}, "
        f"expected {expected.status}"
    )
    check_location(expected, path, response, ctx)
    after = state()
    if rule.effect and expected.ok:
        EFFECTS[rule.effect](before, after, ctx, response)
    else:
        assert after == before, "a refused or read-only request changed data"
    check_audit(rule, expected, ctx, response, since_seq, started)
    assert verify_audit_chain().ok


def test_table_declares_every_persona_and_scope() -> None:
    for key, rules in MATRIX.items():
        for method, rule in rules.items():
            assert set(rule.expect) == set(ALL_PERSONAS), (key, method)
            for persona, outcome in rule.expect.items():
                if not isinstance(outcome, Out):
                    assert tuple(outcome) == scopes_of(rule), (key, method, persona)
            if rule.effect:
                assert rule.effect in EFFECTS
            if rule.body:
                assert rule.body in BODIES


def test_table_has_no_stale_entries() -> None:
    """A declared route that no longer exists is a mistake too (renamed route, dead rule)."""
    discovered = {e.key for e in discovered_endpoints()}
    assert set(MATRIX) - discovered == set()


def test_routes_taking_an_object_are_scoped() -> None:
    """A route with an object id in its path must be tried with own, other and missing ids."""
    for endpoint in discovered_endpoints():
        for method, rule in MATRIX.get(endpoint.key, {}).items():
            if endpoint.params:
                assert scopes_of(rule) == ("own", "other", "missing"), (endpoint.key, method)


def test_matrix_exercises_every_operation_of_the_schema() -> None:
    cases = [p.values[0] for p in _cases()]
    exercised = {(c.endpoint.key, c.method) for c in cases if isinstance(c, Case)}
    for op in api_operations():
        assert (op.key, op.method) in exercised
