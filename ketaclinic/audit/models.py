"""Append-only, hash-chained audit events (security.md R7-R10; ONC 170.315(d)(2)).

Each row carries a gap-free sequence number and `entry_hash = SHA-256(prev_hash || canonical
JSON of the row)`. Editing, deleting or reordering rows breaks the chain, and `ketaclinic
verify-audit` names the first bad sequence number. The single `AuditChainHead` row holds the last
sequence and hash: it serialises writers (row lock) and makes deleting the newest rows detectable.
On PostgreSQL a trigger rejects UPDATE and DELETE on the event table (migration 0002).
"""

from __future__ import annotations

from django.conf import settings
from django.db import models

from ketaclinic.audit.choices import Action

GENESIS_HASH = "0" * 64


class AuditEvent(models.Model):
    seq = models.PositiveBigIntegerField(unique=True)
    occurred_at = models.DateTimeField(db_index=True)
    # No database foreign keys: deleting a user or clinic must never touch the audit trail.
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        related_name="+",
    )
    username = models.CharField(max_length=150, blank=True)
    clinic = models.ForeignKey(
        "accounts.Clinic",
        null=True,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        related_name="+",
    )
    patient_id = models.BigIntegerField(null=True, db_index=True)
    action = models.CharField(max_length=32, choices=Action.choices)
    object_type = models.CharField(max_length=64, blank=True)
    object_id = models.CharField(max_length=64, blank=True)
    request_id = models.CharField(max_length=64, blank=True)
    source_ip = models.GenericIPAddressField(null=True)
    changes = models.JSONField(default=dict, blank=True)
    detail = models.CharField(max_length=500, blank=True)
    prev_hash = models.CharField(max_length=64)
    entry_hash = models.CharField(max_length=64)

    class Meta:
        ordering = ["seq"]
        indexes = [
            models.Index(fields=["clinic", "occurred_at"]),
            models.Index(fields=["user", "occurred_at"]),
            models.Index(fields=["action", "occurred_at"]),
        ]

    def __str__(self) -> str:
        return f"#{self.seq} {self.action} {self.object_type}:{self.object_id}"


class AuditChainHead(models.Model):
    """The newest sequence number and hash; one row (pk=1), locked by every writer."""

    seq = models.PositiveBigIntegerField(default=0)
    entry_hash = models.CharField(max_length=64, default=GENESIS_HASH)

    def __str__(self) -> str:
        return f"head #{self.seq}"
