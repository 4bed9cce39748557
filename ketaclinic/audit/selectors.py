"""Reads of the audit trail: chain verification and the audit report."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime, time, timedelta

from django.db.models import Q, QuerySet
from django.utils import timezone

from ketaclinic.audit.chain import ChainEntry, ChainVerdict, verify_chain
from ketaclinic.audit.models import AuditChainHead, AuditEvent
from ketaclinic.audit.services import payload_of


def _entries() -> Iterator[ChainEntry]:
    for event in AuditEvent.objects.order_by("seq").iterator(chunk_size=5000):
        yield ChainEntry(event.seq, event.prev_hash, event.entry_hash, payload_of(event))


def verify_audit_chain() -> ChainVerdict:
    head = AuditChainHead.objects.filter(pk=1).first()
    return verify_chain(
        _entries(),
        head_seq=head.seq if head else None,
        head_hash=head.entry_hash if head else None,
    )


# Columns the report may sort by: a whitelist, never raw user input into ORDER BY (R18).
REPORT_SORT_KEYS = {
    "seq": "seq",
    "time": "occurred_at",
    "user": "username",
    "clinic": "clinic_id",
    "patient": "patient_id",
    "action": "action",
    "object_type": "object_type",
    "object_id": "object_id",
    "request_id": "request_id",
    "source_ip": "source_ip",
}


def audit_report(
    *,
    clinic_ids: list[int],
    member_user_ids: QuerySet,
    date_from: date | None = None,
    date_to: date | None = None,
    username: str = "",
    patient_id: int | None = None,
    action: str = "",
    sort: str = "-time",
) -> QuerySet[AuditEvent]:
    """Events of the given clinics, plus clinic-less events (logins) of their members."""
    qs = AuditEvent.objects.filter(
        Q(clinic_id__in=clinic_ids) | Q(clinic_id__isnull=True, user_id__in=member_user_ids)
    )
    tz = timezone.get_current_timezone()
    if date_from:
        qs = qs.filter(occurred_at__gte=datetime.combine(date_from, time.min, tzinfo=tz))
    if date_to:
        qs = qs.filter(
            occurred_at__lt=datetime.combine(date_to + timedelta(days=1), time.min, tzinfo=tz)
        )
    if username:
        qs = qs.filter(username__iexact=username)
    if patient_id is not None:
        qs = qs.filter(patient_id=patient_id)
    if action:
        qs = qs.filter(action=action)
    descending = sort.startswith("-")
    column = REPORT_SORT_KEYS.get(sort.lstrip("-"), "occurred_at")
    return qs.order_by(f"-{column}" if descending else column, "-seq" if descending else "seq")
