"""Kinds and states of the controlled-substance ledger (clinical.md §8, security.md §1.4)."""

from django.db import models


class Substance(models.TextChoices):
    KETAMINE = "ketamine", "Ketamine hydrochloride"
    ESKETAMINE = "esketamine", "Esketamine hydrochloride"


class ProductForm(models.TextChoices):
    VIAL = "vial", "Injection, vial"
    NASAL_DEVICE = "nasal_device", "Nasal spray device"


class Schedule(models.TextChoices):
    CIII = "CIII", "Schedule III"


class LocationKind(models.TextChoices):
    SAFE = "safe", "Safe"
    CART = "cart", "Medication cart"


class EntryKind(models.TextChoices):
    """What moved. The sign of `quantity_mg` says which way: + into the location, − out of it."""

    RECEIVE = "receive", "Received"
    ADMINISTER = "administer", "Administered"
    WASTE = "waste", "Wasted"
    TRANSFER_OUT = "transfer_out", "Transferred out"
    TRANSFER_IN = "transfer_in", "Transferred in"
    DISPOSE = "dispose", "Disposed"
    ADJUST = "adjust", "Adjusted"
    LOSS = "loss", "Loss / theft"
    REVERSAL = "reversal", "Reversal"


# Kinds that can only take stock out of a location, and those that only put it in.
OUTGOING_KINDS = frozenset(
    {
        EntryKind.ADMINISTER,
        EntryKind.WASTE,
        EntryKind.TRANSFER_OUT,
        EntryKind.DISPOSE,
        EntryKind.LOSS,
    }
)
INCOMING_KINDS = frozenset({EntryKind.RECEIVE, EntryKind.TRANSFER_IN})


class DisposalMethod(models.TextChoices):
    REVERSE_DISTRIBUTOR = "reverse_distributor", "Sent to a reverse distributor"
    ONSITE_DESTRUCTION = "onsite_destruction", "Destroyed on site (DEA Form 41)"


class SignatureMeaning(models.TextChoices):
    """What a second signer attests to (21 CFR 11.50: the meaning is part of the signature)."""

    WITNESSED_WASTE = "witnessed_waste", "I witnessed this waste being destroyed"
    WITNESSED_DESTRUCTION = (
        "witnessed_destruction",
        "I witnessed this destruction, rendering the substance non-retrievable",
    )
    WITNESSED_HANDOVER = (
        "witnessed_handover",
        "I witnessed this stock being handed to the reverse distributor",
    )
    WITNESSED_ADJUSTMENT = "witnessed_adjustment", "I verified the reason for this adjustment"
    WITNESSED_LOSS = "witnessed_loss", "I verified this loss is recorded as found"
    WITNESSED_REVERSAL = "witnessed_reversal", "I verified this correction"
    WITNESSED_RECEIPT = "witnessed_receipt", "I checked this delivery against the invoice"
    WITNESSED_TRANSFER = "witnessed_transfer", "I witnessed this transfer"
    SECOND_COUNTER = "second_counter", "I counted this stock independently and agree"


class CountPurpose(models.TextChoices):
    SHIFT = "shift", "Shift count"
    DAILY = "daily", "Daily reconciliation"
    INITIAL = "initial", "Initial inventory (21 CFR 1304.11(b))"
    BIENNIAL = "biennial", "Biennial inventory (21 CFR 1304.11(c))"
    ANNUAL = "annual", "Annual inventory (state rule)"


INVENTORY_PURPOSES = frozenset({CountPurpose.INITIAL, CountPurpose.BIENNIAL, CountPurpose.ANNUAL})


class BusinessTime(models.TextChoices):
    """1304.11(a): an inventory says whether it was taken at the opening or close of business."""

    OPENING = "opening", "Opening of business"
    CLOSE = "close", "Close of business"


class InvestigationKind(models.TextChoices):
    # Until someone classifies a discrepancy, its DEA clocks run as if it were significant: being
    # late on a real loss is worse than closing a reminder for a miscount.
    UNDETERMINED = "undetermined", "Not yet classified"
    THEFT = "theft", "Theft"
    SIGNIFICANT_LOSS = "significant_loss", "Significant loss"
    MINOR = "minor", "Minor discrepancy (internal record only)"


# 21 CFR 1301.76(b): any theft, and a significant loss, are reported to the DEA.
REPORTABLE_KINDS = frozenset(
    {InvestigationKind.UNDETERMINED, InvestigationKind.THEFT, InvestigationKind.SIGNIFICANT_LOSS}
)


class InvestigationStatus(models.TextChoices):
    OPEN = "open", "Open"
    CLOSED = "closed", "Closed"
