"""The demo clinic has a realistic ledger: months of stock movements, counts and one open
discrepancy; it verifies, and re-running the seed adds nothing."""

from __future__ import annotations

from typing import Any

from ketaclinic.controlled_substances import selectors
from ketaclinic.controlled_substances.models import Count, Investigation, LedgerEntry, Product
from ketaclinic.demo.seed import seed_clinic


def test_the_demo_ledger_is_complete_valid_and_idempotent(db: Any) -> None:
    seed_clinic(patients=40, seed=7)
    verdict = selectors.verify_ledger()
    assert verdict.ok, verdict.reason
    kinds = set(LedgerEntry.objects.values_list("kind", flat=True))
    assert {"receive", "administer", "waste", "transfer_out", "transfer_in", "dispose"} <= kinds
    assert LedgerEntry.objects.count() > 300
    assert LedgerEntry.objects.filter(kind="waste", witness__isnull=True).count() == 0
    assert Product.objects.filter(substance="esketamine").count() == 2
    assert Count.objects.filter(purpose="initial").count() == 4  # two locations × two clinics
    (inv,) = Investigation.objects.all()
    assert (inv.status, inv.kind, inv.count.has_discrepancy) == ("open", "significant_loss", True)
    assert inv.dea_notice_sent_at is not None and inv.form_106_filed_at is None
    before = (LedgerEntry.objects.count(), Count.objects.count(), Investigation.objects.count())
    seed_clinic(patients=40, seed=7)
    assert (
        LedgerEntry.objects.count(),
        Count.objects.count(),
        Investigation.objects.count(),
    ) == before
    assert selectors.verify_ledger().ok
