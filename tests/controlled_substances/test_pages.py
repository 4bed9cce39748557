"""The ledger's pages: the flows nurses and administrators use, inline errors that change nothing,
role and clinic checks on every route, audit of reads, and list pages with fixed query counts."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from ketaclinic.audit.models import AuditEvent
from ketaclinic.controlled_substances import services
from ketaclinic.controlled_substances.models import (
    Balance,
    Count,
    Investigation,
    LedgerEntry,
)
from tests.conftest import ALL_PERSONAS
from tests.controlled_substances.conftest import PASSWORD, SUPPLIER, Ledger, attest

D = Decimal


@pytest.fixture
def stocked(lg: Ledger) -> Ledger:
    lot = lg.receive(containers=2)
    services.administration_record(
        actor=lg.user("nurse"),
        clinic=lg.clinic,
        location=lg.safe,
        lot=lot,
        patient=lg.patient,
        dose_mg=D("40"),
        waste_mg=D("460"),
        witness=attest(lg.user("prescriber")),
    )
    count = services.count_record(
        actor=lg.user("nurse"),
        clinic=lg.clinic,
        location=lg.safe,
        purpose="shift",
        lines=[services.CountLineInput(lot, 0)],
        second_counter=attest(lg.user("prescriber")),
    )
    assert count.has_discrepancy
    return lg


def url(name: str, *args: Any, **query: Any) -> str:
    path = reverse(f"controlled_substances:{name}", args=args)
    if query:
        path += "?" + "&".join(f"{k}={v}" for k, v in query.items())
    return path


def stock_of(lg: Ledger, location: Any = None) -> Balance:
    return Balance.objects.get(location=location or lg.safe, quantity_mg__gt=0)


# --- the nurse's administration screen ------------------------------------------------------


def administer_form(lg: Ledger, **changes: Any) -> dict[str, Any]:
    data = {
        "stock": stock_of(lg).pk,
        "patient_mrn": lg.patient.mrn,
        "dose": "40",
        "dose_unit": "mg",
        "waste_remainder": "on",
        "waste": "",
        "waste_unit": "mg",
        "session_id": "",
        "note": "",
        "witness": lg.user("prescriber").pk,
        "witness_password": PASSWORD,
        "witness_otp": "",
    }
    data.update(changes)
    return {k: v for k, v in data.items() if v is not None}


def test_nurse_administers_and_wastes_the_remainder_with_a_witness(
    lg: Ledger, client_for: Callable[..., Client]
) -> None:
    lg.receive(containers=1)
    nurse = client_for("nurse")
    page = nurse.get(url("administer", lg.clinic.pk))
    assert page.status_code == 200
    body = page.content.decode()
    assert 'hx-params="stock,patient_mrn,dose,dose_unit,waste,waste_unit,waste_remainder"' in body
    assert "Witness password" in body
    response = nurse.post(url("administer", lg.clinic.pk), administer_form(lg))
    dose = LedgerEntry.objects.get(kind="administer")
    waste = LedgerEntry.objects.get(kind="waste")
    assert response.status_code == 302
    assert response["Location"] == url("entry", lg.clinic.pk, dose.seq)
    assert (dose.quantity_mg, waste.quantity_mg) == (D("-40"), D("-460"))
    assert waste.witness_id == lg.user("prescriber").pk
    assert stock_of_or_none(lg) is None
    detail = nurse.get(response["Location"])
    assert "Administered 40 mg to" in detail.content.decode()


def stock_of_or_none(lg: Ledger) -> Balance | None:
    return Balance.objects.filter(location=lg.safe, quantity_mg__gt=0).first()


def test_doses_can_be_entered_in_ml(lg: Ledger, client_for: Callable[..., Client]) -> None:
    lg.receive(containers=1)
    response = client_for("nurse").post(
        url("administer", lg.clinic.pk),
        administer_form(
            lg, dose="0.8", dose_unit="ml", waste_remainder=None, waste="9.2", waste_unit="ml"
        ),
    )
    assert response.status_code == 302
    assert sorted(
        LedgerEntry.objects.filter(kind__in=["administer", "waste"]).values_list(
            "quantity_mg", flat=True
        )
    ) == [D("-460"), D("-40")]


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"witness_password": "wrong"}, "witness_password", "The witness password is incorrect."),
        ({"witness": ""}, "witness", "A witness must sign this entry."),
        ({"dose": "600"}, "dose", "Only 500 mg of Ketamine HCl lot LOT-A is on hand at Safe"),
        ({"patient_mrn": "NOPE"}, "patient_mrn", "No patient of this clinic has this MRN."),
        ({"dose": "-3"}, "dose", "greater than or equal to 0"),
        ({"dose": "abc"}, "dose", "Enter a number."),
        ({"dose_unit": "containers", "dose": "0.5"}, "dose", "Enter whole vials."),
    ],
)
def test_bad_administration_input_is_shown_inline_and_changes_nothing(
    lg: Ledger, client_for: Callable[..., Client], changes, field, message
) -> None:
    lg.receive(containers=1)
    before = (LedgerEntry.objects.count(), Balance.objects.get().quantity_mg)
    response = client_for("nurse").post(
        url("administer", lg.clinic.pk), administer_form(lg, **changes)
    )
    assert response.status_code == 400
    form = response.context["form"]
    assert any(message in error for error in form.errors[field]), form.errors
    assert (LedgerEntry.objects.count(), Balance.objects.get().quantity_mg) == before
    assert "Nothing was saved" in response.content.decode() or form.non_field_errors()


def test_the_preview_names_the_patient_and_the_remainder(
    lg: Ledger, client_for: Callable[..., Client]
) -> None:
    lg.receive(containers=1)
    response = client_for("nurse").get(
        url(
            "administer_preview",
            lg.clinic.pk,
            stock=stock_of(lg).pk,
            dose="40",
            dose_unit="mg",
            patient_mrn=lg.patient.mrn,
            waste_remainder="on",
        )
    )
    body = response.content.decode()
    assert response.status_code == 200
    assert lg.patient.last_name in body
    assert "waste 460 mg" in body and "500 mg on hand" in body
    read = AuditEvent.objects.get(action="read", patient_id=lg.patient.pk)
    assert "patient lookup" in read.detail


# --- other recording screens -----------------------------------------------------------------


def test_receive_page_records_a_delivery(lg: Ledger, client_for: Callable[..., Client]) -> None:
    response = client_for("nurse").post(
        url("receive", lg.clinic.pk),
        {
            "location": lg.safe.pk,
            "product": lg.device.pk,
            "lot_number": "spr-9",
            "expires_on": "2099-05-01",
            "containers": "4",
            **SUPPLIER,
            "invoice_date": "",
            "note": "",
            "witness": "",
        },
    )
    entry = LedgerEntry.objects.get()
    assert response.status_code == 302
    assert (entry.lot.lot_number, entry.units, entry.quantity_mg) == ("SPR-9", 4, D("112"))
    bad = client_for("nurse").post(url("receive", lg.clinic.pk), {"containers": "x"})
    assert bad.status_code == 400 and LedgerEntry.objects.count() == 1


def test_count_page_opens_an_investigation_on_a_discrepancy(
    lg: Ledger, client_for: Callable[..., Client]
) -> None:
    lot = lg.receive(containers=2)
    nurse = client_for("nurse")
    page = nurse.get(url("count_new", lg.clinic.pk, lg.safe.pk))
    assert lot.lot_number in page.content.decode()
    data = {
        "purpose": "daily",
        "business_time": "",
        "note": "",
        "second_counter": lg.user("prescriber").pk,
        "second_counter_password": PASSWORD,
        "second_counter_otp": "",
        "lines-TOTAL_FORMS": "1",
        "lines-INITIAL_FORMS": "1",
        "lines-MIN_NUM_FORMS": "0",
        "lines-MAX_NUM_FORMS": "500",
        "lines-0-lot_id": lot.pk,
        "lines-0-full_containers": "1",
        "lines-0-open_ml": "5",
        "lines-0-open_is_estimate": "on",
    }
    wrong = nurse.post(
        url("count_new", lg.clinic.pk, lg.safe.pk), {**data, "second_counter_password": "x"}
    )
    assert wrong.status_code == 400 and Count.objects.count() == 0
    response = nurse.post(url("count_new", lg.clinic.pk, lg.safe.pk), data)
    count = Count.objects.get()
    assert response.status_code == 302
    assert response["Location"] == url("count", lg.clinic.pk, count.pk)
    line = count.lines.get()
    assert (line.counted_mg, line.expected_mg, line.open_is_estimate) == (D("750"), D("1000"), True)
    detail = nurse.get(response["Location"]).content.decode()
    assert "Discrepancy" in detail and "-250.000" in detail


def test_administrator_works_an_investigation_through_the_page(
    stocked: Ledger, client_for: Callable[..., Client]
) -> None:
    lg = stocked
    inv = Investigation.objects.get()
    admin = client_for("clinic_admin")
    page = url("investigation", lg.clinic.pk, inv.pk)
    assert admin.post(page, {"action": "classify", "kind": "theft", "note": ""}).status_code == 302
    assert admin.post(page, {"action": "form_106", "reference": "X1"}).status_code == 400
    assert admin.post(page, {"action": "notice", "sent_at": ""}).status_code == 302
    assert admin.post(page, {"action": "form_106", "reference": "F106-77"}).status_code == 302
    assert admin.post(page, {"action": "close", "resolution": "Found broken"}).status_code == 302
    inv.refresh_from_db()
    assert (inv.kind, inv.status, inv.form_106_reference) == ("theft", "closed", "F106-77")
    assert (
        client_for("auditor").post(page, {"action": "close", "resolution": "x"}).status_code == 403
    )
    assert client_for("auditor").get(page).status_code == 200


def test_onsite_destruction_page_needs_two_witnesses(
    stocked: Ledger, client_for: Callable[..., Client]
) -> None:
    lg = stocked
    data = {
        "stock": stock_of(lg).pk,
        "amount": "1",
        "unit": "containers",
        "method": "onsite_destruction",
        "destruction_method": "Chemical digestion",
        "document_number": "F41-1",
        "reason": "Expired",
        "witness": lg.user("nurse").pk,
        "witness_password": PASSWORD,
    }
    admin = client_for("clinic_admin")
    one = admin.post(url("dispose", lg.clinic.pk), data)
    assert one.status_code == 400
    assert one.context["form"].errors["second_witness"] == ["A witness must sign this entry."]
    both = admin.post(
        url("dispose", lg.clinic.pk),
        {**data, "second_witness": lg.user("prescriber").pk, "second_witness_password": PASSWORD},
    )
    entry = LedgerEntry.objects.get(kind="dispose")
    assert both.status_code == 302 and entry.quantity_mg == D("-500")
    assert entry.second_witness_id == lg.user("prescriber").pk


def test_reversal_page(stocked: Ledger, client_for: Callable[..., Client]) -> None:
    lg = stocked
    dose = LedgerEntry.objects.get(kind="administer")
    nurse = client_for("nurse")
    assert "Reverse this entry" in nurse.get(url("entry", lg.clinic.pk, dose.seq)).content.decode()
    response = nurse.post(
        url("entry_reverse", lg.clinic.pk, dose.seq),
        {
            "reason": "Wrong patient",
            "witness": lg.user("prescriber").pk,
            "witness_password": PASSWORD,
        },
    )
    reversal = LedgerEntry.objects.get(kind="reversal")
    assert response.status_code == 302 and reversal.reverses_id == dose.pk
    receipt = LedgerEntry.objects.get(kind="receive")
    assert nurse.get(url("entry_reverse", lg.clinic.pk, receipt.seq)).status_code == 200
    assert (
        client_for("prescriber").get(url("entry_reverse", lg.clinic.pk, receipt.seq)).status_code
        == 403
    )


def test_entry_detail_shows_signature_meaning_and_hash(
    stocked: Ledger, client_for: Callable[..., Client]
) -> None:
    lg = stocked
    waste = LedgerEntry.objects.get(kind="waste")
    body = client_for("auditor").get(url("entry", lg.clinic.pk, waste.seq)).content.decode()
    assert waste.witness_name in body
    assert "I witnessed this waste being destroyed" in body
    assert waste.entry_hash in body
    assert "12 Elm St" in body
    read = AuditEvent.objects.filter(action="read", object_id=str(waste.seq)).get()
    assert read.patient_id == lg.patient.pk


# --- who may open what ---------------------------------------------------------------------

ROLES = {
    "cs.view": {"prescriber", "nurse", "clinic_admin", "auditor"},
    "cs.record": {"prescriber", "nurse"},
    "cs.stock": {"prescriber", "nurse", "clinic_admin"},
    "cs.manage": {"clinic_admin"},
    "cs.report": {"clinic_admin", "auditor"},
}
# Whether the other clinic's nurse holds the permission somewhere (then clinic A is a 404).
OTHER_NURSE_HOLDS = {"cs.view", "cs.record", "cs.stock"}


def routes(lg: Ledger) -> list[tuple[str, str, str]]:
    c = lg.clinic.pk
    entry = LedgerEntry.objects.get(kind="administer")
    count = Count.objects.get()
    inv = Investigation.objects.get()
    pages = [
        ("balances", url("balances", c), "cs.view"),
        ("ledger", url("ledger", c), "cs.view"),
        ("ledger_csv", url("ledger_csv", c), "cs.report"),
        ("entry", url("entry", c, entry.seq), "cs.view"),
        ("receive", url("receive", c), "cs.stock"),
        ("administer", url("administer", c), "cs.record"),
        ("administer_preview", url("administer_preview", c), "cs.record"),
        ("waste", url("waste", c), "cs.record"),
        ("transfer", url("transfer", c), "cs.stock"),
        ("dispose", url("dispose", c), "cs.manage"),
        ("adjust", url("adjust", c), "cs.manage"),
        ("loss", url("loss", c), "cs.manage"),
        ("counts", url("counts", c), "cs.view"),
        ("count_new", url("count_new", c, lg.safe.pk), "cs.stock"),
        ("count", url("count", c, count.pk), "cs.view"),
        ("investigations", url("investigations", c), "cs.report"),
        ("investigation", url("investigation", c, inv.pk), "cs.report"),
        ("reports", url("reports", c), "cs.report"),
        ("catalogue", url("catalogue", c), "cs.view"),
        ("product_new", url("product_new", c), "cs.manage"),
        ("location_new", url("location_new", c), "cs.manage"),
    ]
    for report in ("administrations", "receipts", "waste", "disposals", "inventory"):
        pages += [
            (f"report {report}", url("report", c, report), "cs.report"),
            (f"print {report}", url("report_print", c, report), "cs.report"),
            (f"csv {report}", url("report_csv", c, report), "cs.report"),
        ]
    return pages


def expected(persona: str, permission: str) -> int:
    if persona == "anonymous":
        return 302
    if persona in ROLES[permission]:
        return 200
    if persona == "other_clinic_nurse" and permission in OTHER_NURSE_HOLDS:
        return 404
    return 403


def test_every_page_answers_each_persona_as_declared(
    stocked: Ledger, client_for: Callable[..., Client]
) -> None:
    clients = {persona: client_for(persona) for persona in ALL_PERSONAS}
    failures = []
    for name, path, permission in routes(stocked):
        for persona, client in clients.items():
            status = client.get(path).status_code
            if status != expected(persona, permission):
                failures.append(
                    f"{name} {persona}: {status}, expected {expected(persona, permission)}"
                )
    assert failures == []


def test_another_clinics_ledger_answers_404_like_a_missing_one(
    stocked: Ledger, client_for: Callable[..., Client]
) -> None:
    lg = stocked
    clinic_b = lg.world.clinic_b.pk
    admin = client_for("clinic_admin")
    entry = LedgerEntry.objects.get(kind="administer")
    for path in (
        url("balances", clinic_b),
        url("entry", clinic_b, entry.seq),
        url("report", clinic_b, "administrations"),
        url("balances", 999999),
        url("entry", lg.clinic.pk, 999999),
        url("count", lg.clinic.pk, 999999),
        url("investigation", lg.clinic.pk, 999999),
        url("count_new", lg.clinic.pk, lg.safe_b.pk),
        url("report", lg.clinic.pk, "nonsense"),
    ):
        assert admin.get(path).status_code == 404, path


def test_index_lists_the_users_clinics_with_stock_and_deadlines(
    stocked: Ledger, client_for
) -> None:
    nurse = client_for("nurse").get(url("index")).content.decode()
    assert url("balances", stocked.clinic.pk) in nurse and "Clinic B" not in nurse
    assert "500 mg</strong> on hand" in nurse and "DEA written notice" not in nurse
    admin = client_for("clinic_admin").get(url("index")).content.decode()
    assert "DEA written notice" in admin
    assert client_for("front_desk").get(url("index")).status_code == 403


def test_navigation_shows_the_ledger_to_those_who_may_see_it(stocked: Ledger, client_for) -> None:
    assert "Controlled substances" in client_for("nurse").get("/patients/").content.decode()
    assert (
        "Controlled substances" not in client_for("front_desk").get("/patients/").content.decode()
    )


def test_nurses_do_not_see_administrator_actions(stocked: Ledger, client_for) -> None:
    body = client_for("nurse").get(url("balances", stocked.clinic.pk)).content.decode()
    assert url("administer", stocked.clinic.pk) in body
    assert url("dispose", stocked.clinic.pk) not in body
    assert url("reports", stocked.clinic.pk) not in body
    admin_body = client_for("clinic_admin").get(url("balances", stocked.clinic.pk)).content.decode()
    assert "DEA deadlines" in admin_body and url("dispose", stocked.clinic.pk) in admin_body


def test_the_patient_chart_lists_doses_given(stocked: Ledger, client_for) -> None:
    body = client_for("nurse").get(f"/patients/{stocked.patient.pk}/").content.decode()
    assert "Ketamine and esketamine given" in body
    assert "-40.000" in body and "-460.000" in body
    assert "Record an administration" in body
    auditor = client_for("auditor").get(f"/patients/{stocked.patient.pk}/").content.decode()
    assert "Record an administration" not in auditor


def test_the_chart_rows_match_the_entries_they_come_from(stocked: Ledger) -> None:
    """The chart's ledger rows are read with only the columns shown: the same HTML as the
    former rendering from the entries with every column (two lots, escaped names)."""
    from zoneinfo import ZoneInfo

    from django.utils.formats import localize
    from django.utils.html import conditional_escape as e

    from ketaclinic.controlled_substances import selectors
    from ketaclinic.controlled_substances.models import Product
    from ketaclinic.controlled_substances.views import _CHART_ENTRIES, chart_panel_rows

    lg = stocked
    Product.objects.filter(pk=stock_of(lg).lot.product_id).update(name="Ketamine <b>&</b>")
    lot = lg.receive(containers=1, lot_number="L<2>", location=lg.cart)
    services.administration_record(
        actor=lg.user("nurse"),
        clinic=lg.clinic,
        location=lg.cart,
        lot=lot,
        patient=lg.patient,
        dose_mg=D("12.5"),
        waste_mg=D("487.5"),
        witness=attest(lg.user("prescriber")),
    )
    tz = ZoneInfo("America/Chicago")
    entries = list(selectors.patient_recent_entries(lg.patient.pk, lg.clinic.pk, 20))
    assert len(entries) >= 4
    expected = "".join(
        f'<tr><td><a href="{url("entry", lg.clinic.pk, x.seq)}">'
        f"{x.occurred_at.astimezone(tz):%Y-%m-%d %H:%M}</a></td>"
        f"<td>{e(x.get_kind_display())}</td>"
        f"<td>{e(x.lot.product.name)} {e(x.lot.product.finished_form)}, lot "
        f"{e(x.lot.lot_number)}</td>"
        f'<td class="num">{e(localize(x.quantity_mg))}</td>'
        f"<td>{e(x.actor_name)}"
        + (f"; witness {e(x.witness_name)}" if x.witness_name else "")
        + "</td></tr>\n    "
        for x in entries
    )
    with CaptureQueriesContext(connection) as ctx:
        rows = _CHART_ENTRIES.objects(patient_id=lg.patient.pk, clinic_id=lg.clinic.pk)
        html = str(chart_panel_rows(rows, lg.clinic.pk, tz))
    assert len(ctx.captured_queries) == 1  # no deferred column is loaded afterwards
    assert [row.seq for row in rows] == [x.seq for x in entries]
    assert html == expected
    assert "Ketamine &lt;b&gt;&amp;&lt;/b&gt;" in expected and "L&lt;2&gt;" in expected


def test_reads_of_the_ledger_are_audited(stocked: Ledger, client_for) -> None:
    client_for("auditor").get(url("ledger", stocked.clinic.pk, patient_mrn=stocked.patient.mrn))
    event = AuditEvent.objects.filter(action="list").latest("seq")
    assert event.object_type == "controlled_substances.ledgerentry"
    assert event.patient_id == stocked.patient.pk


# --- lists run a fixed number of queries -----------------------------------------------------


def queries(client: Client, path: str) -> int:
    with CaptureQueriesContext(connection) as ctx:
        assert client.get(path).status_code == 200
    return len(ctx.captured_queries)


@pytest.mark.parametrize(
    "page", ["balances", "ledger", "report administrations", "report waste", "counts"]
)
def test_list_pages_do_not_grow_queries_with_rows(stocked: Ledger, client_for, page: str) -> None:
    lg = stocked
    path = dict((name, p) for name, p, _ in routes(lg))[page]
    admin = client_for("clinic_admin")
    few = queries(admin, path)
    for n in range(6):
        lot = lg.receive(containers=1, lot_number=f"MORE-{n}", location=lg.cart)
        services.administration_record(
            actor=lg.user("nurse"),
            clinic=lg.clinic,
            location=lg.cart,
            lot=lot,
            patient=lg.patient2,
            dose_mg=D("50"),
            waste_mg=D("450"),
            witness=attest(lg.user("prescriber")),
        )
        services.count_record(
            actor=lg.user("nurse"),
            clinic=lg.clinic,
            location=lg.cart,
            purpose="shift",
            lines=[],
            second_counter=attest(lg.user("prescriber")),
        )
    assert queries(admin, path) == few


# The balances table's loop as the template wrote it before the rows moved to Python.
_BALANCE_ROWS_TEMPLATE = """{% for row in rows %}
      <tr{% if row.expired %} class="expired"{% endif %}>
        <td>{{ row.balance.location.name }}</td>
        <td>{{ row.balance.lot.product.name }} <small class="muted">{{ row.balance.lot.product.finished_form }}</small></td>
        <td>{{ row.balance.lot.product.ndc }}</td>
        <td><a href="{% url 'controlled_substances:ledger' clinic.pk %}?lot_number={{ row.balance.lot.lot_number|urlencode }}&amp;location={{ row.balance.location_id }}">{{ row.balance.lot.lot_number }}</a></td>
        <td>{{ row.balance.lot.expires_on|date:"Y-m-d" }}{% if row.expired %} <strong>expired</strong>{% endif %}</td>
        <td class="num">{{ row.balance.quantity_mg }}</td>
        <td class="num">{{ row.on_hand_ml|default_if_none:"" }}</td>
        <td>{{ row.full_containers }} full{% if row.partial_mg %} + {{ row.partial_mg.normalize }} mg open{% endif %}</td>
        {% if can.stock %}<td><a href="{% url 'controlled_substances:count_new' clinic.pk row.balance.location_id %}">Count</a></td>{% endif %}
      </tr>
      {% endfor %}"""  # noqa: E501


def test_balance_rows_are_written_as_the_template_wrote_them(
    lg: Ledger, client_for: Callable[..., Client], time_machine: Any
) -> None:
    from datetime import date

    from django.template import Context, Template

    from ketaclinic.controlled_substances import selectors, views

    time_machine.move_to("2026-02-20 12:00:00+00:00")
    lg.safe.name = 'Safe <b>"A"</b> & co'
    lg.safe.save()
    lg.receive(containers=2, lot_number="K&1 <x>/2")
    lg.receive(containers=1, lot_number="OLD", expires_on=date(2026, 3, 1))  # expired by then
    time_machine.move_to("2026-03-02 12:00:00+00:00")
    lg.receive(lg.device, containers=3, lot_number="S 1", location=lg.cart)
    services.administration_record(
        actor=lg.user("nurse"),
        clinic=lg.clinic,
        location=lg.safe,
        lot=Balance.objects.get(lot__lot_number="K&1 <X>/2").lot,
        patient=lg.patient,
        dose_mg=D("40.5"),
        witness=None,
    )  # an open vial: 959.5 mg = 1 full + 459.5 mg
    rows = selectors.balances(lg.clinic)
    assert len(rows) == 3 and any(r.expired for r in rows) and any(r.partial_mg for r in rows)
    for can_stock in (True, False):
        context = {"rows": rows, "clinic": lg.clinic, "can": {"stock": can_stock}}
        old = Template(_BALANCE_ROWS_TEMPLATE).render(Context(context))
        new = views.balance_rows_html(rows, lg.clinic.pk, can_count=can_stock)
        assert new == old
    page = client_for("clinic_admin").get(url("balances", lg.clinic.pk)).content.decode()
    assert "<tbody>\n      " + views.balance_rows_html(rows, lg.clinic.pk, can_count=True) in page
    assert "Safe &lt;b&gt;&quot;A&quot;&lt;/b&gt; &amp; co" in page


def _ledger_rows_from_models(entries: Any, tz: Any, entry_url: str) -> str:
    """The ledger page's rows as written from model instances before the page read plain rows."""
    from html import escape

    lines = []
    for e in entries:
        kind = e.get_kind_display()
        if e.reverses_id and e.reverses:
            kind += f" of #{e.reverses.seq}"
        witnesses = "; ".join(n for n in (e.witness_name, e.second_witness_name) if n)
        values = (
            e.occurred_at.astimezone(tz).strftime("%Y-%m-%d %H:%M"),
            kind,
            e.location.name,
            f"{e.lot.product.name} {e.lot.lot_number}",
        )
        lines.append(
            f'<tr><td><a href="{entry_url}{e.seq}/">{e.seq}</a></td>'
            + "".join(f"<td>{escape(str(v))}</td>" for v in values)
            + f'<td class="num">{e.quantity_mg}</td><td class="num">{e.balance_after_mg}</td>'
            + "".join(f"<td>{escape(v)}</td>" for v in (e.actor_name, witnesses, e.patient_name))
            + "</tr>"
        )
    return "\n".join(lines)


@pytest.mark.parametrize("query", ["", "?kind=administer", "?kind=reversal", "?lot_number=K%261"])
def test_ledger_rows_are_what_the_entries_showed(
    lg: Ledger, client_for: Callable[..., Client], query: str, monkeypatch: Any
) -> None:
    from zoneinfo import ZoneInfo

    from ketaclinic.controlled_substances import selectors, views

    monkeypatch.setattr(views, "PAGE_SIZE", 3)  # a first page (compiled) and later ones
    lg.safe.name = "Safe <b>&</b>"
    lg.safe.save()
    lot = lg.receive(containers=4, lot_number="K&1")
    for dose in ("40", "41.5", "42", "43"):
        services.administration_record(
            actor=lg.user("nurse"),
            clinic=lg.clinic,
            location=lg.safe,
            lot=lot,
            patient=lg.patient,
            dose_mg=D(dose),
            waste_mg=D("10"),
            witness=attest(lg.user("prescriber")),
        )
    given = LedgerEntry.objects.filter(kind="administer").last()
    services.entry_reverse(
        actor=lg.user("clinic_admin"), entry=given, reason="x", witness=attest(lg.user("nurse"))
    )
    client = client_for("nurse")
    base = url("ledger", lg.clinic.pk)
    f = selectors.EntryFilter(
        kind=query.partition("kind=")[2], lot_number="K&1" if "lot_number" in query else ""
    )
    entries = list(selectors.entries(lg.clinic, f))
    entry_url = url("ledger", lg.clinic.pk)
    tz = ZoneInfo(lg.clinic.timezone)
    pages = [entries[i : i + 3] for i in range(0, len(entries), 3)]
    assert pages and (len(pages) > 1 or "reversal" in query)
    for number, expected in enumerate(pages, start=1):
        sep = "&" if query else "?"
        response = client.get(f"{base}{query}{sep}page={number}")
        assert response.status_code == 200
        assert _ledger_rows_from_models(expected, tz, entry_url) in response.content.decode()
    assert "Safe &lt;b&gt;&amp;&lt;/b&gt;" in response.content.decode()


def test_the_balances_pages_compiled_reads_equal_the_querysets(stocked: Ledger) -> None:
    from ketaclinic.controlled_substances import selectors

    lg = stocked
    devices = lg.receive(lg.device, containers=3, lot_number="S1", location=lg.cart)
    compiled = selectors.balances(lg.clinic)  # every location, nothing empty: compiled
    by_orm = [
        row
        for location in (lg.safe, lg.cart)
        for row in selectors.balances(lg.clinic, location_id=location.pk)
    ]
    key = lambda rows: sorted(  # noqa: E731
        (r.balance.pk, r.balance.location.name, r.balance.lot.product.name, r.full_containers)
        for r in rows
    )
    assert len(compiled) == 2 and key(compiled) == key(by_orm)
    assert [r.balance.pk for r in compiled] == list(
        Balance.objects.filter(clinic=lg.clinic, quantity_mg__gt=0)
        .order_by("location__name", "lot__product__name", "lot__expires_on", "lot_id")
        .values_list("pk", flat=True)
    )
    own = selectors.deadlines([lg.clinic.pk])  # compiled
    both = selectors.deadlines([lg.clinic.pk, lg.world.clinic_b.pk])  # through the ORM
    assert own and [(d.investigation.pk, d.what, d.due_on) for d in own] == [
        (d.investigation.pk, d.what, d.due_on) for d in both if d.clinic.pk == lg.clinic.pk
    ]
    assert own[0].clinic.name == lg.clinic.name
    due = selectors.inventory_due(lg.clinic)
    assert due.last_taken_on is None and due.overdue  # the shift count is not an inventory
    services.count_record(
        actor=lg.user("nurse"),
        clinic=lg.clinic,
        location=lg.cart,
        purpose="initial",
        business_time="opening",
        lines=[services.CountLineInput(devices, 3)],
        second_counter=attest(lg.user("prescriber")),
    )
    assert selectors.inventory_due(lg.clinic).last_taken_on is not None


@pytest.mark.parametrize("section", ["balances", "ledger", "reports", "counts", ""])
@pytest.mark.parametrize("role", ["nurse", "clinic_admin", "auditor", "prescriber"])
def test_the_cached_navigation_is_what_the_template_writes(
    stocked: Ledger, section: str, role: str
) -> None:
    from django.template.loader import render_to_string
    from django.urls import get_script_prefix, get_urlconf

    from ketaclinic.accounts import access
    from ketaclinic.controlled_substances import views

    clinic = stocked.clinic
    can = {
        name: access.has_permission(stocked.user(role), f"cs.{name}", clinic.pk)
        for name in ("view", "record", "stock", "manage", "report")
    }
    context = {
        "cs_nav_urls": views._nav_urls(clinic.pk),
        "can": can,
        "section": section,
        "other_clinics": [],
        "clinic": clinic,
    }
    cached = views._nav_html_for(
        get_script_prefix(), get_urlconf(), clinic.pk, tuple(can.items()), section
    )
    assert cached == render_to_string("controlled_substances/_nav_links.html", context)
    assert render_to_string("controlled_substances/_nav.html", {**context, "cs_nav": cached}) == (
        render_to_string("controlled_substances/_nav.html", context)
    )
    # The current section is marked where its link is shown (Reports: to cs.report only).
    marked = section != "" and (section != "reports" or can["report"])
    assert ('aria-current="page"' in cached) == marked
    # A user of several clinics gets the links to the others: the template, not the cache.
    other = render_to_string(
        "controlled_substances/_nav.html",
        {**context, "cs_nav": None, "other_clinics": [stocked.world.clinic_b]},
    )
    assert other.startswith(cached.removesuffix("\n</nav>\n")) and "switch to" in other


def test_the_chart_panel_writes_what_its_template_writes(stocked: Ledger) -> None:
    """The chart writes the panel without its template (Panel.html): the same bytes, with and
    without the right to record and with and without entries."""
    from ketaclinic.patients.models import Patient
    from tests.panel_support import own_html_keys, panels_as_written

    for role in ("nurse", "auditor", "prescriber"):
        user = stocked.user(role)
        html = panels_as_written(user, stocked.patient)["controlled_substances"]
        assert ("Record an administration" in html) is (role != "auditor")
        assert "-40.000" in html
        assert "controlled_substances" in own_html_keys(user, stocked.patient)
    other = Patient.objects.filter(clinic=stocked.clinic).exclude(pk=stocked.patient.pk).first()
    assert other is not None
    html = panels_as_written(stocked.user("nurse"), other)["controlled_substances"]
    assert "No ketamine or esketamine recorded for this patient." in html
