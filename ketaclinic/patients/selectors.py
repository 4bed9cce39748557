"""Reads of patients, always scoped through accounts.access."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from django.db.models import Q, QuerySet, Value
from django.db.models.functions import Concat

from ketaclinic.accounts import access
from ketaclinic.patients.models import Patient

_DOB_FORMATS = ("%Y-%m-%d", "%m/%d/%Y", "%m-%d-%Y")


def parse_dob(text: str) -> date | None:
    """Accepts 1980-04-23, 04/23/1980 or 04-23-1980; None when it is not a date."""
    text = text.strip()
    for fmt in _DOB_FORMATS:
        try:
            return datetime.strptime(text, fmt).date()  # noqa: DTZ007 (a date, not a time)
        except ValueError:
            continue
    return None


@dataclass(frozen=True)
class PatientQuery:
    """A staff search: free text (names or MRN), date of birth, MRN, clinic."""

    text: str = ""
    dob: date | None = None
    mrn: str = ""
    clinic_id: int | None = None

    @property
    def is_empty(self) -> bool:
        return not (self.text or self.dob or self.mrn or self.clinic_id)

    def describe(self) -> str:
        parts = [f"{k}={v}" for k, v in self.__dict__.items() if v]
        return "; ".join(parts)[:500]


def patient_search(user: Any, query: PatientQuery) -> QuerySet[Patient]:
    qs = access.patients_for(user, "patient.view").select_related("clinic")
    if query.clinic_id:
        qs = qs.filter(clinic_id=query.clinic_id)
    if query.mrn:
        qs = qs.filter(mrn__iexact=query.mrn.strip())
    if query.dob:
        qs = qs.filter(date_of_birth=query.dob)
    text = query.text.strip()
    if text:
        dob = parse_dob(text)
        if dob:
            qs = qs.filter(date_of_birth=dob)
        else:
            # Every word must match the start of a first name, last name or the MRN.
            for word in re.split(r"[\s,]+", text)[:4]:
                if word:
                    qs = qs.filter(
                        Q(last_name__istartswith=word)
                        | Q(first_name__istartswith=word)
                        | Q(mrn__iexact=word)
                    )
            # Sort the matches rather than walk the (clinic, last_name, first_name) index: the
            # planner assumes matches are spread evenly through the alphabet, so for a late prefix
            # ("tho") it filtered ~5,000 index rows to fill one page (5.7 ms vs 0.8 ms at 10,000
            # patients). `name || ''` sorts exactly like the name, but no index provides it, so
            # PostgreSQL uses the prefix indexes (patients migration 0002) and sorts the few hits.
            return qs.order_by(
                Concat("last_name", Value("")), Concat("first_name", Value("")), "id"
            )
    return qs.order_by("last_name", "first_name", "id")
