"""Every rule of the ledger's write path (services), one behaviour per test."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.core.exceptions import PermissionDenied, ValidationError

from ketaclinic.accounts import access
from ketaclinic.audit.models import AuditEvent
from ketaclinic.audit.selectors import verify_audit_chain
from ketaclinic.controlled_substances import selectors, services
from ketaclinic.controlled_substances.choices import (
    BusinessTime,
    CountPurpose,
    DisposalMethod,
    EntryKind,
    InvestigationKind,
    SignatureMeaning,
)
from ketaclinic.controlled_substances.ledger import missing_record_elements
from ketaclinic.controlled_substances.models import Balance, LedgerEntry, Lot
from ketaclinic.core import clock
from tests.controlled_substances.conftest import SUPPLIER, Ledger, attest

D = Decimal


def on_hand(location, lot) -> Decimal:
    balance = Balance.objects.filter(location=location, lot=lot).first()
    return balance.quantity_mg if balance else D("0")


def snapshot() -> tuple[int, int, list]:
    return (
        LedgerEntry.objects.count(),
        AuditEvent.objects.count(),
        sorted(Balance.objects.values_list("location_id", "lot_id", "quantity_mg")),
    )


def administer(lg: Ledger, lot: Lot, dose, waste="0", *, actor="nurse", witness="prescriber", **kw):
    return services.administration_record(
        actor=lg.user(actor),
        clinic=kw.pop("clinic", lg.clinic),
        location=kw.pop("location", lg.safe),
        lot=lot,
        patient=kw.pop("patient", lg.patient),
        dose_mg=D(dose),
        waste_mg=D(waste),
        witness=attest(lg.user(witness)) if witness else None,
        **kw,
    )


# --- receive --------------------------------------------------------------------------------


def test_receipt_creates_the_lot_and_adds_whole_containers(lg: Ledger) -> None:
    entry = services.receipt_record(
        actor=lg.user("nurse"),
        clinic=lg.clinic,
        location=lg.safe,
        product=lg.vial50,
        lot_number=" k123 ",
        expires_on=date(2099, 1, 31),
        containers=3,
        invoice_date=clock.today_in(lg.clinic.timezone),
        **SUPPLIER,
    )
    assert entry.kind == EntryKind.RECEIVE
    assert entry.lot.lot_number == "K123"
    assert (entry.quantity_mg, entry.volume_ml, entry.units) == (D("1500"), D("30"), 3)
    assert entry.counterparty_dea_number == "RC0123454"
    assert entry.balance_after_mg == D("1500") == on_hand(lg.safe, entry.lot)
    assert missing_record_elements(entry) == []
    event = AuditEvent.objects.get(object_type="controlled_substances.ledgerentry")
    assert (event.action, event.object_id, event.clinic_id) == ("create", "1", lg.clinic.pk)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("supplier_dea_number", "RC0123455", "valid DEA number"),
        ("supplier_name", "  ", "required"),
        ("invoice_number", "", "required"),
        ("containers", 0, "number of vials"),
        ("expires_on", date(2000, 1, 1), "already expired"),
        ("lot_number", "A\x00B", "null character"),
    ],
)
def test_receipt_refuses_bad_input_and_writes_nothing(lg: Ledger, field, value, message) -> None:
    before = snapshot()
    args = {
        "actor": lg.user("nurse"),
        "clinic": lg.clinic,
        "location": lg.safe,
        "product": lg.vial50,
        "lot_number": "K1",
        "expires_on": date(2099, 1, 1),
        "containers": 1,
        **SUPPLIER,
        field: value,
    }
    with pytest.raises(ValidationError) as exc:
        services.receipt_record(**args)
    assert message in " ".join(exc.value.message_dict[field])
    assert snapshot() == before


def test_receipt_of_a_known_lot_must_match_its_expiry(lg: Ledger) -> None:
    lg.receive(lot_number="K9", expires_on=date(2099, 1, 1))
    with pytest.raises(ValidationError) as exc:
        lg.receive(lot_number="K9", expires_on=date(2098, 1, 1))
    assert "already recorded with expiry 2099-01-01" in str(exc.value)


def test_receipt_permissions_and_clinic_scope(lg: Ledger) -> None:
    for persona in ("auditor", "front_desk", "other_clinic_nurse", "patient"):
        with pytest.raises(PermissionDenied):
            lg.receive(actor=persona)
    with pytest.raises(ValidationError) as exc:
        lg.receive(location=lg.safe_b)
    assert "location" in exc.value.message_dict
    lg.receive(actor="clinic_admin")  # administrators receive too


# --- administer -----------------------------------------------------------------------------


def test_administration_draws_the_dose_and_wastes_the_remainder_in_one_go(lg: Ledger) -> None:
    lot = lg.receive(containers=1)
    record = administer(lg, lot, "40", "460", session_id=77)
    dose, waste = record.administration, record.waste
    assert waste is not None
    assert (dose.kind, dose.quantity_mg, dose.volume_ml) == ("administer", D("-40"), D("-0.8"))
    assert (waste.kind, waste.quantity_mg, waste.volume_ml) == ("waste", D("-460"), D("-9.2"))
    assert record.dispensed_mg == D("500")
    assert waste.related_entry_id == dose.pk and waste.seq == dose.seq + 1
    assert dose.patient_name == lg.patient.full_name
    assert dose.patient_address == "12 Elm St, Boston, MA 02116"
    assert dose.treatment_session_id == waste.treatment_session_id == 77
    assert dose.actor_name == lg.user("nurse").signature_name
    assert waste.witness_id == lg.user("prescriber").pk
    assert waste.witness_meaning == SignatureMeaning.WITNESSED_WASTE
    assert waste.witness_signed_at is not None
    assert on_hand(lg.safe, lot) == 0
    events = AuditEvent.objects.filter(object_type="controlled_substances.ledgerentry", seq__gt=1)
    assert [(e.object_id, e.patient_id) for e in events] == [
        (str(dose.seq), lg.patient.pk),
        (str(waste.seq), lg.patient.pk),
    ]
    assert missing_record_elements(dose) == missing_record_elements(waste) == []


def test_administering_more_than_on_hand_is_refused_with_a_clear_message(lg: Ledger) -> None:
    lot = lg.receive(containers=1)
    administer(lg, lot, "100", "0")
    before = snapshot()
    with pytest.raises(ValidationError) as exc:
        administer(lg, lot, "300", "150")
    message = " ".join(exc.value.message_dict["dose_mg"])
    assert "Only 400 mg of Ketamine HCl lot LOT-A is on hand at Safe" in message
    assert "needs" in message and "Nothing was recorded" in message
    assert snapshot() == before


def test_dose_only_needs_no_witness_but_any_waste_does(lg: Ledger) -> None:
    lot = lg.receive()
    administer(lg, lot, "56", "0", witness=None)
    with pytest.raises(ValidationError) as exc:
        administer(lg, lot, "40", "10", witness=None)
    assert exc.value.message_dict["witness"] == ["A witness must sign this entry."]


def test_administration_refuses_patients_of_another_clinic_or_without_address(lg: Ledger) -> None:
    lot = lg.receive()
    with pytest.raises(ValidationError) as exc:
        administer(lg, lot, "40", patient=lg.patient_b)
    assert exc.value.message_dict["patient"] == ["Choose a patient of this clinic."]
    no_address = lg.world.patient_a  # the factory leaves the address blank
    with pytest.raises(ValidationError) as exc:
        administer(lg, lot, "40", patient=no_address)
    assert "1304.22(c)" in exc.value.message_dict["patient"][0]


def test_nasal_spray_doses_are_whole_devices(lg: Ledger) -> None:
    lot = lg.receive(lg.device, containers=6, lot_number="SPR1")
    with pytest.raises(ValidationError) as exc:
        administer(lg, lot, "50")
    assert "multiples of 28 mg" in exc.value.message_dict["dose_mg"][0]
    record = administer(lg, lot, "84", witness=None)
    assert (record.administration.units, record.administration.volume_ml) == (-3, None)
    assert record.waste is None


def test_expired_lots_cannot_be_given(lg: Ledger, time_machine) -> None:
    lot = lg.receive(expires_on=clock.today_in("America/New_York") + timedelta(days=2))
    time_machine.move_to(clock.now() + timedelta(days=4))
    with pytest.raises(ValidationError) as exc:
        administer(lg, lot, "40")
    assert "expired" in exc.value.message_dict["lot"][0]


def test_only_clinicians_of_the_clinic_administer(lg: Ledger) -> None:
    lot = lg.receive()
    for persona in ("clinic_admin", "auditor", "front_desk", "other_clinic_nurse"):
        with pytest.raises(PermissionDenied):
            administer(lg, lot, "40", actor=persona, witness="nurse")
    administer(lg, lot, "40", actor="prescriber", witness="nurse")


def test_late_entries_are_dated_back_at_most_a_day(lg: Ledger) -> None:
    lot = lg.receive()
    two_hours_ago = clock.now() - timedelta(hours=2)
    record = administer(lg, lot, "40", occurred_at=two_hours_ago)
    assert record.administration.occurred_at == two_hours_ago
    assert record.administration.recorded_at > two_hours_ago
    for when in (clock.now() - timedelta(hours=25), clock.now() + timedelta(hours=1)):
        with pytest.raises(ValidationError) as exc:
            administer(lg, lot, "40", occurred_at=when)
        assert "occurred_at" in exc.value.message_dict


@pytest.mark.parametrize("dose", ["0", "-5", "abc", "Infinity", "2000000"])
def test_nonsense_doses_are_field_errors(lg: Ledger, dose) -> None:
    lot = lg.receive()
    with pytest.raises(ValidationError) as exc:
        services.administration_record(
            actor=lg.user("nurse"),
            clinic=lg.clinic,
            location=lg.safe,
            lot=lot,
            patient=lg.patient,
            dose_mg=dose,
            waste_mg="0",
            witness=None,
        )
    assert "dose_mg" in exc.value.message_dict


# --- waste, transfer, dispose, adjust, loss ---------------------------------------------------


def test_standalone_waste_needs_a_reason_and_a_witness(lg: Ledger) -> None:
    lot = lg.receive()
    kw = {
        "actor": lg.user("nurse"),
        "clinic": lg.clinic,
        "location": lg.safe,
        "lot": lot,
        "waste_mg": D("200"),
    }
    with pytest.raises(ValidationError):
        services.waste_record(**kw, reason="", witness=attest(lg.user("prescriber")))
    with pytest.raises(ValidationError):
        services.waste_record(**kw, reason="Vial dropped", witness=None)
    entry = services.waste_record(
        **kw, reason="Vial dropped", witness=attest(lg.user("prescriber"))
    )
    assert (entry.quantity_mg, entry.related_entry_id) == (D("-200"), None)


def test_transfer_within_the_clinic_records_both_sides(lg: Ledger) -> None:
    lot = lg.receive(containers=4)
    out, incoming = services.transfer_record(
        actor=lg.user("nurse"),
        clinic=lg.clinic,
        from_location=lg.safe,
        to_location=lg.cart,
        lot=lot,
        quantity_mg=D("1000"),
    )
    assert (out.kind, out.quantity_mg, out.units) == ("transfer_out", D("-1000"), -2)
    assert (incoming.kind, incoming.quantity_mg, incoming.related_entry_id) == (
        "transfer_in",
        D("1000"),
        out.pk,
    )
    assert on_hand(lg.safe, lot) == on_hand(lg.cart, lot) == D("1000")
    with pytest.raises(ValidationError):
        services.transfer_record(
            actor=lg.user("nurse"),
            clinic=lg.clinic,
            from_location=lg.safe,
            to_location=lg.safe,
            lot=lot,
            quantity_mg=D("1"),
        )
    with pytest.raises(ValidationError) as exc:
        services.transfer_record(
            actor=lg.user("nurse"),
            clinic=lg.clinic,
            from_location=lg.safe,
            to_location=lg.cart,
            lot=lot,
            quantity_mg=D("1000.001"),
        )
    assert "Only 1000 mg" in exc.value.message_dict["quantity_mg"][0]


def test_transfer_to_another_clinic_needs_an_administrator_of_both(lg: Ledger) -> None:
    lot = lg.receive(containers=2)
    with pytest.raises(PermissionDenied):
        services.transfer_record(
            actor=lg.user("nurse"),
            clinic=lg.clinic,
            from_location=lg.safe,
            to_location=lg.safe_b,
            lot=lot,
            quantity_mg=D("500"),
        )
    admin = lg.user("clinic_admin")
    with pytest.raises(ValidationError) as exc:
        services.transfer_record(
            actor=admin,
            clinic=lg.clinic,
            from_location=lg.safe,
            to_location=lg.safe_b,
            lot=lot,
            quantity_mg=D("500"),
        )
    assert "clinics you manage" in exc.value.message_dict["to_location"][0]
    from tests.factories import MembershipFactory

    MembershipFactory(user=admin, clinic=lg.world.clinic_b, role="clinic_admin")
    access.forget_memberships(admin)
    out, incoming = services.transfer_record(
        actor=admin,
        clinic=lg.clinic,
        from_location=lg.safe,
        to_location=lg.safe_b,
        lot=lot,
        quantity_mg=D("500"),
    )
    assert incoming.clinic_id == lg.world.clinic_b.pk
    assert out.counterparty_name == "Clinic B" and incoming.counterparty_name == "Clinic A"


def _dispose(lg: Ledger, lot: Lot, method: str, **kw):
    args = {
        "actor": lg.user("clinic_admin"),
        "clinic": lg.clinic,
        "location": lg.safe,
        "lot": lot,
        "quantity_mg": D("500"),
        "method": method,
        "witness": attest(lg.user("nurse")),
        "reverse_distributor_name": "Returns LLC",
        "reverse_distributor_address": "1 Way, IN",
        "reverse_distributor_dea_number": "RR7654329",
        "destruction_method": "",
    }
    args.update(kw)
    return services.disposal_record(**args)


def test_disposal_to_a_reverse_distributor(lg: Ledger) -> None:
    lot = lg.receive(containers=2)
    entry = _dispose(lg, lot, DisposalMethod.REVERSE_DISTRIBUTOR, document_number="RD-1")
    assert entry.counterparty_dea_number == "RR7654329"
    assert entry.witness_meaning == SignatureMeaning.WITNESSED_HANDOVER
    assert missing_record_elements(entry) == []
    with pytest.raises(ValidationError) as exc:
        _dispose(lg, lot, DisposalMethod.REVERSE_DISTRIBUTOR, reverse_distributor_dea_number="X")
    assert "reverse_distributor_dea_number" in exc.value.message_dict


def test_onsite_destruction_needs_two_different_witnesses_and_the_method(lg: Ledger) -> None:
    lot = lg.receive(containers=2)
    onsite = DisposalMethod.ONSITE_DESTRUCTION
    with pytest.raises(ValidationError) as exc:
        _dispose(lg, lot, onsite, destruction_method="Rx Destroyer")
    assert exc.value.message_dict["second_witness"] == ["A witness must sign this entry."]
    with pytest.raises(ValidationError) as exc:
        _dispose(
            lg,
            lot,
            onsite,
            destruction_method="Rx Destroyer",
            second_witness=attest(lg.user("nurse")),
        )
    assert "different people" in exc.value.message_dict["second_witness"][0]
    with pytest.raises(ValidationError) as exc:
        _dispose(lg, lot, onsite, second_witness=attest(lg.user("prescriber")))
    assert "destruction_method" in exc.value.message_dict
    entry = _dispose(
        lg,
        lot,
        onsite,
        destruction_method="Rx Destroyer",
        second_witness=attest(lg.user("prescriber")),
    )
    assert (entry.witness_id, entry.second_witness_id) == (
        lg.user("nurse").pk,
        lg.user("prescriber").pk,
    )
    assert entry.counterparty_name == ""
    assert missing_record_elements(entry) == []


def test_only_administrators_dispose_adjust_or_record_losses(lg: Ledger) -> None:
    lot = lg.receive(containers=2)
    with pytest.raises(PermissionDenied):
        _dispose(
            lg,
            lot,
            DisposalMethod.REVERSE_DISTRIBUTOR,
            actor=lg.user("nurse"),
            witness=attest(lg.user("prescriber")),
        )
    with pytest.raises(PermissionDenied):
        services.adjustment_record(
            actor=lg.user("nurse"),
            clinic=lg.clinic,
            location=lg.safe,
            lot=lot,
            quantity_mg=D("-1"),
            reason="x",
            witness=attest(lg.user("prescriber")),
        )
    with pytest.raises(PermissionDenied):
        services.loss_record(
            actor=lg.user("prescriber"),
            clinic=lg.clinic,
            location=lg.safe,
            lot=lot,
            quantity_mg=D("1"),
            kind="theft",
            reason="x",
            witness=attest(lg.user("nurse")),
        )


def test_adjustment_is_signed_and_never_below_zero(lg: Ledger) -> None:
    lot = lg.receive(containers=1)
    admin = lg.user("clinic_admin")
    entry = services.adjustment_record(
        actor=admin,
        clinic=lg.clinic,
        location=lg.safe,
        lot=lot,
        quantity_mg=D("-2.5"),
        reason="Overfill estimate corrected",
        witness=attest(lg.user("nurse")),
    )
    assert (entry.quantity_mg, entry.balance_after_mg) == (D("-2.5"), D("497.5"))
    up = services.adjustment_record(
        actor=admin,
        clinic=lg.clinic,
        location=lg.safe,
        lot=lot,
        quantity_mg=D("1"),
        reason="Found in the fridge door",
        witness=attest(lg.user("nurse")),
    )
    assert up.balance_after_mg == D("498.5")
    with pytest.raises(ValidationError):
        services.adjustment_record(
            actor=admin,
            clinic=lg.clinic,
            location=lg.safe,
            lot=lot,
            quantity_mg=D("-500"),
            reason="x",
            witness=attest(lg.user("nurse")),
        )
    with pytest.raises(ValidationError) as exc:
        services.adjustment_record(
            actor=admin,
            clinic=lg.clinic,
            location=lg.safe,
            lot=lot,
            quantity_mg=D("1"),
            reason=" ",
            witness=attest(lg.user("nurse")),
        )
    assert "reason" in exc.value.message_dict


def test_loss_opens_an_investigation_with_the_dea_clocks(lg: Ledger, time_machine) -> None:
    time_machine.move_to("2026-03-13 15:00:00-05:00")  # a Friday in Boston
    lot = lg.receive(containers=1)
    entry = services.loss_record(
        actor=lg.user("clinic_admin"),
        clinic=lg.clinic,
        location=lg.safe,
        lot=lot,
        quantity_mg=D("500"),
        kind=InvestigationKind.THEFT,
        reason="Vial missing from safe",
        witness=attest(lg.user("nurse")),
    )
    inv = entry.investigation
    assert inv is not None and inv.kind == "theft" and inv.discrepancy_mg == D("-500")
    assert inv.dea_notice_due_on == date(2026, 3, 16)  # next business day: Monday
    assert inv.form_106_due_on == date(2026, 4, 27)  # 45 days
    again = services.loss_record(
        actor=lg.user("clinic_admin"),
        clinic=lg.clinic,
        location=lg.safe,
        lot=lg.receive(),
        quantity_mg=D("1"),
        kind=InvestigationKind.THEFT,
        reason="Second vial",
        witness=attest(lg.user("nurse")),
        investigation=inv,
    )
    assert again.investigation_id == inv.pk


# --- reversal -------------------------------------------------------------------------------


def test_a_reversal_cancels_an_entry_without_touching_it(lg: Ledger) -> None:
    lot = lg.receive(containers=1)
    dose = administer(lg, lot, "40", "0", witness=None).administration
    original_hash = dose.entry_hash
    (reversal,) = services.entry_reverse(
        actor=lg.user("nurse"),
        entry=dose,
        reason="Wrong patient",
        witness=attest(lg.user("prescriber")),
    )
    assert (reversal.kind, reversal.quantity_mg, reversal.reverses_id) == (
        "reversal",
        D("40"),
        dose.pk,
    )
    assert reversal.patient_id == dose.patient_id
    assert on_hand(lg.safe, lot) == D("500")
    dose.refresh_from_db()
    assert dose.entry_hash == original_hash and dose.quantity_mg == D("-40")
    with pytest.raises(ValidationError) as exc:
        services.entry_reverse(
            actor=lg.user("clinic_admin"),
            entry=dose,
            reason="again",
            witness=attest(lg.user("nurse")),
        )
    assert "already reversed" in str(exc.value)
    with pytest.raises(ValidationError) as exc:
        services.entry_reverse(
            actor=lg.user("clinic_admin"),
            entry=reversal,
            reason="undo",
            witness=attest(lg.user("nurse")),
        )
    assert "cannot itself be reversed" in str(exc.value)


def test_who_may_reverse(lg: Ledger) -> None:
    lot = lg.receive(containers=2, actor="prescriber")
    with pytest.raises(PermissionDenied):  # someone else's entry
        services.entry_reverse(
            actor=lg.user("nurse"),
            entry=lot.entries.get(),
            reason="x",
            witness=attest(lg.user("clinic_admin")),
        )
    with pytest.raises(PermissionDenied):
        services.entry_reverse(
            actor=lg.user("auditor"),
            entry=lot.entries.get(),
            reason="x",
            witness=attest(lg.user("nurse")),
        )
    services.entry_reverse(
        actor=lg.user("clinic_admin"),
        entry=lot.entries.get(),
        reason="x",
        witness=attest(lg.user("nurse")),
    )


def test_reversing_a_receipt_of_stock_already_used_is_refused(lg: Ledger) -> None:
    lot = lg.receive(containers=1)
    administer(lg, lot, "100", "0", witness=None)
    receipt = LedgerEntry.objects.get(kind="receive")
    with pytest.raises(ValidationError) as exc:
        services.entry_reverse(
            actor=lg.user("clinic_admin"),
            entry=receipt,
            reason="dup",
            witness=attest(lg.user("nurse")),
        )
    assert "Only 400 mg" in str(exc.value)


def test_reversing_either_side_of_a_transfer_reverses_both(lg: Ledger) -> None:
    lot = lg.receive(containers=2)
    out, incoming = services.transfer_record(
        actor=lg.user("nurse"),
        clinic=lg.clinic,
        from_location=lg.safe,
        to_location=lg.cart,
        lot=lot,
        quantity_mg=D("500"),
    )
    reversals = services.entry_reverse(
        actor=lg.user("nurse"),
        entry=out,
        reason="Wrong cart",
        witness=attest(lg.user("prescriber")),
    )
    assert [r.reverses_id for r in reversals] == [incoming.pk, out.pk]
    assert on_hand(lg.safe, lot) == D("1000") and on_hand(lg.cart, lot) == 0


# --- counts ---------------------------------------------------------------------------------


def _count(lg: Ledger, lines, *, purpose=CountPurpose.SHIFT, business_time="", location=None):
    return services.count_record(
        actor=lg.user("nurse"),
        clinic=lg.clinic,
        location=location or lg.safe,
        purpose=purpose,
        business_time=business_time,
        lines=lines,
        second_counter=attest(lg.user("prescriber")),
    )


def test_a_matching_count_opens_nothing(lg: Ledger) -> None:
    lot = lg.receive(containers=3)
    administer(lg, lot, "40", "0", witness=None)
    count = _count(lg, [services.CountLineInput(lot, 2, D("9.2"), True)])
    line = count.lines.get()
    assert (line.expected_mg, line.counted_mg, line.open_is_estimate) == (
        D("1460"),
        D("1460"),
        True,
    )
    assert not count.has_discrepancy and not count.investigations.exists()
    assert count.second_counter_id == lg.user("prescriber").pk
    assert count.ledger_seq == LedgerEntry.objects.order_by("-seq").first().seq


def test_a_discrepancy_opens_an_unclassified_investigation(lg: Ledger) -> None:
    lot = lg.receive(containers=3)
    count = _count(lg, [services.CountLineInput(lot, 2)])
    assert count.has_discrepancy
    inv = count.investigations.get()
    assert (inv.kind, inv.status, inv.discrepancy_mg) == ("undetermined", "open", D("-500"))
    assert inv.dea_notice_due_on is not None and inv.form_106_due_on is not None
    assert "expected 1500 mg, counted 1000 mg" in inv.description
    assert selectors.deadlines([lg.clinic.pk])[0].investigation == inv


def test_a_count_must_cover_every_lot_on_hand(lg: Ledger) -> None:
    first = lg.receive(containers=1, lot_number="A")
    lg.receive(containers=1, lot_number="B")
    with pytest.raises(ValidationError) as exc:
        _count(lg, [services.CountLineInput(first, 1)])
    assert "missing: B" in exc.value.message_dict["lines"][0]


def test_inventories_say_opening_or_close_and_may_be_zero(lg: Ledger) -> None:
    with pytest.raises(ValidationError) as exc:
        _count(lg, [], purpose=CountPurpose.INITIAL)
    assert "opening or close of business" in exc.value.message_dict["business_time"][0]
    count = _count(lg, [], purpose=CountPurpose.INITIAL, business_time=BusinessTime.OPENING)
    assert count.lines.count() == 0 and not count.has_discrepancy
    due = selectors.inventory_due(lg.clinic)
    today = clock.today_in(lg.clinic.timezone)
    assert due.last_taken_on == today and not due.overdue
    assert (due.due_on.year, due.due_on.month) == (today.year + 2, today.month)


def test_count_lines_are_validated(lg: Ledger) -> None:
    lot = lg.receive(containers=1)
    device_lot = lg.receive(lg.device, containers=2, lot_number="SPR")
    with pytest.raises(ValidationError) as exc:
        _count(
            lg, [services.CountLineInput(lot, 0, D("10")), services.CountLineInput(device_lot, 2)]
        )
    assert "lines.0" in exc.value.message_dict
    with pytest.raises(ValidationError) as exc:
        _count(
            lg, [services.CountLineInput(lot, 1), services.CountLineInput(device_lot, 1, D("1"))]
        )
    assert "counted whole" in exc.value.message_dict["lines.1"][0]
    with pytest.raises(ValidationError):
        _count(lg, [services.CountLineInput(lot, 1), services.CountLineInput(lot, 1)])


# --- investigations -------------------------------------------------------------------------


def _investigation(lg: Ledger):
    lot = lg.receive(containers=2)
    return _count(lg, [services.CountLineInput(lot, 1)]).investigations.get()


def test_investigation_lifecycle_for_a_significant_loss(lg: Ledger) -> None:
    inv = _investigation(lg)
    admin = lg.user("clinic_admin")
    with pytest.raises(ValidationError):
        services.investigation_close(actor=admin, investigation=inv, resolution="done")
    inv = services.investigation_classify(
        actor=admin, investigation=inv, kind=InvestigationKind.SIGNIFICANT_LOSS
    )
    with pytest.raises(ValidationError) as exc:
        services.investigation_form_106_filed(actor=admin, investigation=inv, reference="F1")
    assert "written notice" in str(exc.value)
    inv = services.investigation_notice_sent(actor=admin, investigation=inv)
    with pytest.raises(ValidationError):
        services.investigation_close(actor=admin, investigation=inv, resolution="done")
    with pytest.raises(ValidationError):
        services.investigation_classify(actor=admin, investigation=inv, kind="minor")
    inv = services.investigation_form_106_filed(actor=admin, investigation=inv, reference="F-1")
    inv = services.investigation_close(actor=admin, investigation=inv, resolution="Vial broken")
    assert inv.status == "closed" and inv.closed_by == admin
    assert selectors.deadlines([lg.clinic.pk]) == []
    with pytest.raises(ValidationError):
        services.investigation_classify(actor=admin, investigation=inv, kind="theft")
    updates = AuditEvent.objects.filter(
        object_type="controlled_substances.investigation", action="update"
    )
    assert updates.count() == 4
    assert updates.last().changes["status"] == {"old": "open", "new": "closed"}


def test_a_minor_discrepancy_stops_the_clocks_and_closes_directly(lg: Ledger) -> None:
    inv = _investigation(lg)
    admin = lg.user("clinic_admin")
    inv = services.investigation_classify(
        actor=admin, investigation=inv, kind="minor", note="Miscount; recounted"
    )
    assert inv.dea_notice_due_on is None and inv.form_106_due_on is None
    assert "Miscount" in inv.description
    with pytest.raises(ValidationError):
        services.investigation_notice_sent(actor=admin, investigation=inv)
    services.investigation_close(actor=admin, investigation=inv, resolution="Recount matched")


def test_only_administrators_work_investigations(lg: Ledger) -> None:
    inv = _investigation(lg)
    for persona in ("nurse", "auditor", "prescriber"):
        with pytest.raises(PermissionDenied):
            services.investigation_classify(actor=lg.user(persona), investigation=inv, kind="minor")


def test_every_write_left_a_verifiable_chain(lg: Ledger) -> None:
    lot = lg.receive(containers=2)
    administer(lg, lot, "40", "460")
    assert selectors.verify_ledger().ok
    assert verify_audit_chain().ok
