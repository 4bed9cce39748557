"""The DEA reports equal the ledger exactly: the same entries, the same totals, in the page, the
CSV, the printable page and the API, for every filter; exports and prints are audited."""

from __future__ import annotations

import csv
import html
import io
import re
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from django.db import connection
from django.db.models import Q, Sum
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from ketaclinic.audit.models import AuditEvent
from ketaclinic.controlled_substances import reports, selectors, services, views
from ketaclinic.controlled_substances.choices import DisposalMethod, EntryKind
from ketaclinic.controlled_substances.models import LedgerEntry
from tests.controlled_substances.conftest import Ledger, attest

D = Decimal
BOSTON = ZoneInfo("America/New_York")
KIND_OF = {
    "administrations": EntryKind.ADMINISTER,
    "receipts": EntryKind.RECEIVE,
    "waste": EntryKind.WASTE,
    "disposals": EntryKind.DISPOSE,
}


@pytest.fixture
def month(lg: Ledger, time_machine) -> Ledger:
    """Three days of activity with two products, two patients, a correction and a disposal."""
    nurse, prescriber, admin = lg.user("nurse"), lg.user("prescriber"), lg.user("clinic_admin")
    days = [datetime(2026, 3, d, 10, 0, tzinfo=BOSTON) for d in (2, 3, 4)]
    lots = {}
    for i, day in enumerate(days):
        time_machine.move_to(day)
        lots[i] = lg.receive(containers=3, lot_number=f"K{i}")
        device = lg.receive(lg.device, containers=4, lot_number=f"S{i}")
        for patient, dose in ((lg.patient, "40"), (lg.patient2, "55.5")):
            services.administration_record(
                actor=nurse,
                clinic=lg.clinic,
                location=lg.safe,
                lot=lots[i],
                patient=patient,
                dose_mg=D(dose),
                waste_mg=D("500") - D(dose),
                witness=attest(prescriber),
            )
        services.administration_record(
            actor=prescriber,
            clinic=lg.clinic,
            location=lg.safe,
            lot=device,
            patient=lg.patient,
            dose_mg=D("56"),
            witness=None,
        )
    time_machine.move_to(days[2] + timedelta(hours=2))
    wrong = LedgerEntry.objects.filter(kind="administer", patient=lg.patient2).last()
    services.entry_reverse(actor=admin, entry=wrong, reason="Dose not given", witness=attest(nurse))
    services.disposal_record(
        actor=admin,
        clinic=lg.clinic,
        location=lg.safe,
        lot=lots[0],
        quantity_mg=D("500"),
        method=DisposalMethod.REVERSE_DISTRIBUTOR,
        witness=attest(nurse),
        reverse_distributor_name="Returns LLC",
        reverse_distributor_address="1 Way, IN",
        reverse_distributor_dea_number="RR7654329",
        document_number="RD-9",
    )
    services.count_record(
        actor=nurse,
        clinic=lg.clinic,
        location=lg.cart,
        purpose="biennial",
        business_time="close",
        lines=[],
        second_counter=attest(prescriber),
    )
    return lg


def ledger_rows(lg: Ledger, kind: str, **filters: Any) -> list[LedgerEntry]:
    qs = LedgerEntry.objects.filter(clinic=lg.clinic).filter(
        Q(kind=kind) | Q(kind="reversal", reverses__kind=kind)
    )
    return list(qs.filter(**filters).order_by("occurred_at", "seq"))


def csv_rows(client: Client, path: str) -> list[dict[str, str]]:
    response = client.get(path)
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv"
    text = b"".join(response.streaming_content).decode()
    return list(csv.DictReader(io.StringIO(text)))


@pytest.mark.parametrize("slug", list(KIND_OF))
def test_each_report_is_exactly_its_kind_of_ledger_entries(month: Ledger, slug, client_for) -> None:
    lg = month
    report = reports.ENTRY_REPORTS[slug]
    expected = ledger_rows(lg, KIND_OF[slug])
    assert expected, "the fixture has entries of every kind"
    rows = list(report.rows(lg.clinic, selectors.EntryFilter()))
    assert [e.seq for e in rows] == [e.seq for e in expected]
    ledger_total = sum((e.quantity_mg for e in expected), D("0")) * report.sign
    assert report.total_mg(report.rows(lg.clinic, selectors.EntryFilter())) == ledger_total
    auditor = client_for("auditor")
    base = reverse("controlled_substances:report_csv", args=[lg.clinic.pk, slug])
    exported = csv_rows(auditor, base)
    assert [int(r["Entry"]) for r in exported] == [e.seq for e in expected]
    column = "Quantity (mg)"
    assert sum((D(r[column]) for r in exported), D("0")) == ledger_total
    page = auditor.get(reverse("controlled_substances:report", args=[lg.clinic.pk, slug]))
    assert page.context["page"].paginator.count == len(expected)
    assert f"{reports.describe_total(ledger_total)}" in page.content.decode()


def test_the_administration_log_carries_the_1304_22_c_elements(month: Ledger, client_for) -> None:
    lg = month
    path = reverse("controlled_substances:report_csv", args=[lg.clinic.pk, "administrations"])
    rows = csv_rows(client_for("clinic_admin"), path)
    for row in rows:
        for element in (
            "Date",
            "Substance",
            "Finished form",
            "Units per container",
            "Quantity (mg)",
            "Patient",
            "Patient address",
            "Administered by",
        ):
            assert row[element], (element, row)
    vial = next(r for r in rows if r["NDC"] == lg.vial50.ndc)
    assert vial["Substance"] == "Ketamine hydrochloride"
    assert vial["Finished form"] == "injection 50 mg/mL, 10 mL vial (500 mg)"
    assert vial["Units per container"] == "10 mL"
    assert vial["Patient address"] == "12 Elm St, Boston, MA 02116"
    assert vial["Date"].startswith("2026-03-02 10:00")  # the clinic's local time
    device = next(r for r in rows if r["NDC"] == lg.device.ndc)
    assert (device["Containers"], device["Volume (mL)"]) == ("2", "")
    correction = next(r for r in rows if r["Correction"])
    assert (
        correction["Correction"].startswith("Reversal of #") and D(correction["Quantity (mg)"]) < 0
    )


def test_filters_by_dates_product_lot_and_patient(month: Ledger, client_for) -> None:
    lg = month
    report = reports.ADMINISTRATIONS
    day3 = datetime(2026, 3, 3, tzinfo=BOSTON)
    cases = [
        (
            selectors.EntryFilter(date_from=day3.date(), date_to=day3.date()),
            {"occurred_at__gte": day3, "occurred_at__lt": day3 + timedelta(days=1)},
        ),
        (selectors.EntryFilter(product_id=lg.device.pk), {"lot__product": lg.device}),
        (
            selectors.EntryFilter(
                lot_id=LedgerEntry.objects.filter(lot__lot_number="K1").first().lot_id
            ),
            {"lot__lot_number": "K1"},
        ),
        (selectors.EntryFilter(patient_id=lg.patient2.pk), {"patient": lg.patient2}),
    ]
    for f, lookups in cases:
        rows = list(report.rows(lg.clinic, f))
        assert [e.seq for e in rows] == [e.seq for e in ledger_rows(lg, "administer", **lookups)]
        assert rows
    query = f"date_from=2026-03-03&date_to=2026-03-03&patient_mrn={lg.patient.mrn}"
    path = reverse("controlled_substances:report_csv", args=[lg.clinic.pk, "administrations"])
    exported = csv_rows(client_for("auditor"), f"{path}?{query}")
    assert [r["Patient"] for r in exported] == [lg.patient.full_name, lg.patient.full_name]
    event = AuditEvent.objects.filter(action="export").latest("seq")
    assert event.patient_id == lg.patient.pk and "administrations" in event.detail
    by_lot = csv_rows(client_for("auditor"), f"{path}?lot_number=k1&product={lg.vial50.pk}")
    assert {r["Lot"] for r in by_lot} == {"K1"}
    assert len(by_lot) == len(ledger_rows(lg, "administer", lot__lot_number="K1"))


def test_the_printable_page_is_audited_and_names_the_registrant(month: Ledger, client_for) -> None:
    lg = month
    lg.clinic.dea_registration_number = "FH1234563"
    lg.clinic.save()
    path = reverse("controlled_substances:report_print", args=[lg.clinic.pk, "waste"])
    body = client_for("clinic_admin").get(path).content.decode()
    assert "FH1234563" in body and "Waste log" in body
    assert body.count("<tr>") == len(ledger_rows(lg, "waste")) + 1
    assert AuditEvent.objects.filter(action="print", clinic_id=lg.clinic.pk).count() == 1


def test_the_inventory_report_records_zero_and_counted_lines(month: Ledger, client_for) -> None:
    lg = month
    path = reverse("controlled_substances:report_csv", args=[lg.clinic.pk, "inventory"])
    rows = csv_rows(client_for("auditor"), path)
    assert [
        (r["Inventory"], r["Taken at"], r["Location"], r["Product"], r["Total (mg)"]) for r in rows
    ] == [
        (
            "Biennial inventory (21 CFR 1304.11(c))",
            "Close of business",
            "Cart",
            "none on hand",
            "0.000",
        )
    ]


def test_the_api_report_matches_the_csv(month: Ledger, client_for) -> None:
    lg = month
    response = client_for("auditor").get(
        f"/api/v1/controlled-substances/clinics/{lg.clinic.pk}/reports/waste?limit=5&offset=1"
    )
    data = response.json()
    expected = ledger_rows(lg, "waste")
    assert response.status_code == 200
    assert data["count"] == len(expected)
    assert D(data["total_mg"]) == -sum((e.quantity_mg for e in expected), D("0"))
    assert [row[0] for row in data["rows"]] == [e.seq for e in expected[1:6]]
    assert data["columns"][:2] == ["Entry", "Date"]


def test_the_full_ledger_export_carries_every_entry_and_its_hash(month: Ledger, client_for) -> None:
    lg = month
    rows = csv_rows(
        client_for("auditor"), reverse("controlled_substances:ledger_csv", args=[lg.clinic.pk])
    )
    entries = list(LedgerEntry.objects.filter(clinic=lg.clinic).order_by("seq"))
    assert [(int(r["Entry"]), r["Hash"]) for r in rows] == [(e.seq, e.entry_hash) for e in entries]
    total = LedgerEntry.objects.filter(clinic=lg.clinic).aggregate(t=Sum("quantity_mg"))["t"]
    assert sum((D(r["Quantity (mg, signed)"]) for r in rows), D("0")) == total
    on_hand = sum((r.balance.quantity_mg for r in selectors.balances(lg.clinic)), D("0"))
    assert total == on_hand


def test_report_filters_with_errors_answer_400_and_nothing_else(month: Ledger, client_for) -> None:
    lg = month
    auditor = client_for("auditor")
    for slug in ("administrations", "inventory"):
        bad = "?date_from=2026-03-05&date_to=2026-03-01"
        page = auditor.get(reverse("controlled_substances:report", args=[lg.clinic.pk, slug]) + bad)
        assert page.status_code == 400
        assert "The end date is before the start date." in page.content.decode()
        csv_path = reverse("controlled_substances:report_csv", args=[lg.clinic.pk, slug])
        assert auditor.get(csv_path + bad).status_code == 400
    assert not AuditEvent.objects.filter(action="export").exists()


def table_rows(body: str) -> list[list[str]]:
    """The cells of the report table's body rows, unescaped (the "no records" row excluded)."""
    tbody = body.split('id="report-rows"', 1)[1].split("<tbody>", 1)[1].split("</tbody>", 1)[0]
    return [
        [html.unescape(cell) for cell in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)]
        for row in re.findall(r"<tr>(.*?)</tr>", tbody, re.S)
    ]


def _more_doses(lg: Ledger, count: int) -> None:
    """`count` more administrations, each with its witnessed waste (rows of two reports)."""
    lot = lg.receive(containers=count, lot_number="BULK")
    nurse, prescriber = lg.user("nurse"), lg.user("prescriber")
    for i in range(count):
        services.administration_record(
            actor=nurse,
            clinic=lg.clinic,
            location=lg.safe,
            lot=lot,
            patient=lg.patient if i % 2 else lg.patient2,
            dose_mg=D("40") + i,
            waste_mg=D("460") - i,
            witness=attest(prescriber),
        )


@pytest.mark.parametrize("slug", list(KIND_OF))
@pytest.mark.parametrize("query", ["", "?date_from=2026-03-03&date_to=2026-03-04"])
def test_the_page_shows_exactly_the_rows_and_total_of_the_print_and_the_csv(
    month: Ledger, slug: str, query: str, client_for, monkeypatch
) -> None:
    lg = month
    _more_doses(lg, 6)
    monkeypatch.setattr(views, "REPORT_PAGE_SIZE", 4)  # several pages from a small ledger
    auditor = client_for("auditor")
    base = reverse("controlled_substances:report", args=[lg.clinic.pk, slug])
    shown: list[list[str]] = []
    totals = set()
    page_number = 1
    while True:
        sep = "&" if query else "?"
        response = auditor.get(f"{base}{query}{sep}page={page_number}")
        assert response.status_code == 200
        body = response.content.decode()
        shown += table_rows(body)
        totals.add(re.search(r'id="report-total">(.*?)</strong>', body).group(1))
        if not response.context["page"].has_next():
            break
        page_number += 1
    assert page_number > 1 or slug == "disposals"  # the fixture has one disposal
    printed = auditor.get(
        reverse("controlled_substances:report_print", args=[lg.clinic.pk, slug]) + query
    ).content.decode()
    exported = csv_rows(
        auditor, reverse("controlled_substances:report_csv", args=[lg.clinic.pk, slug]) + query
    )
    assert shown == table_rows(printed) == [list(r.values()) for r in exported]
    report = reports.ENTRY_REPORTS[slug]
    assert len(exported) == response.context["page"].paginator.count
    total = reports.describe_total(sum((D(r["Quantity (mg)"]) for r in exported), D("0")))
    assert totals == {html.escape(total)}
    assert f"total {total}" in html.unescape(printed)
    ledger = ledger_rows(lg, KIND_OF[slug])
    if query:
        day = datetime(2026, 3, 3, tzinfo=BOSTON)
        ledger = [e for e in ledger if day <= e.occurred_at < day + timedelta(days=2)]
    assert [int(r["Entry"]) for r in exported] == [e.seq for e in ledger]
    assert total == reports.describe_total(report.sign * sum(e.quantity_mg for e in ledger))


def _report_queries(client: Client, path: str) -> int:
    with CaptureQueriesContext(connection) as captured:
        assert client.get(path).status_code == 200
    return len(captured.captured_queries)


@pytest.mark.parametrize("slug", list(KIND_OF))
def test_report_page_queries_do_not_grow_with_the_ledger(
    month: Ledger, slug: str, client_for
) -> None:
    lg = month
    admin = client_for("clinic_admin")
    base = reverse("controlled_substances:report", args=[lg.clinic.pk, slug])
    paths = [base, f"{base}?date_from=2026-03-01&date_to=2026-12-31&page=2"]
    small = [_report_queries(admin, path) for path in paths]
    _more_doses(lg, 60)  # more than a page of administrations and of waste
    large = [_report_queries(admin, path) for path in paths]
    # (A page with a reversal or a waste row reads the linked entries' numbers: one query.)
    assert max(large) <= max(small)
    # Session, user, device, memberships, clinic, two filter choices, reversal ids, the audit
    # event (4 with its transaction), count and total, the page's rows, their linked entries,
    # and the session save (3).
    assert max(large) <= 18


def test_compiled_counts_totals_and_first_rows_equal_the_querysets(month: Ledger) -> None:
    lg = month
    day = datetime(2026, 3, 3, tzinfo=BOSTON).date()
    filters = [
        selectors.EntryFilter(),
        selectors.EntryFilter(date_from=day),
        selectors.EntryFilter(date_to=day),
        selectors.EntryFilter(date_from=day, date_to=day),
        selectors.EntryFilter(date_from=day, patient_id=lg.patient.pk),  # not compiled
    ]
    for slug, report in reports.ENTRY_REPORTS.items():
        reversal_ids = selectors.reversals_of_kind(lg.clinic.pk, report.kind)
        assert bool(reversal_ids) == (slug == "administrations")  # the fixture's one correction
        for f in filters:
            qs = report.rows(lg.clinic, f, reversal_ids)
            assert selectors.kind_totals(lg.clinic, report.kind, f, reversal_ids) == (
                selectors.totals(qs)
            )
            first = selectors.kind_first_rows(
                lg.clinic, report.kind, f, reversal_ids, report.fields, 3
            )
            if reversal_ids or f.patient_id:
                assert first is None
            else:
                assert first == list(report.values(qs)[:3])
    empty = selectors.EntryFilter(date_from=day.replace(year=2020), date_to=day.replace(year=2020))
    assert selectors.kind_totals(lg.clinic, EntryKind.WASTE, empty, []) == selectors.Totals(0, D(0))


def _html_rows_as_before(columns: Any, rows: Any, tz: ZoneInfo) -> str:
    """reports.html_rows as it was written before its per-row list comprehension."""
    from html import escape

    opening = ['<td class="num">' if column.numeric else "<td>" for column in columns]
    lines = []
    for row in rows:
        values = reports.cells(columns, row, tz)
        lines.append(
            "<tr>"
            + "".join(f"{o}{escape(str(v))}</td>" for o, v in zip(opening, values, strict=True))
            + "</tr>"
        )
    return "\n".join(lines)


@pytest.mark.parametrize("slug", list(KIND_OF))
def test_report_rows_are_written_as_before(month: Ledger, slug: str) -> None:
    lg = month
    report = reports.ENTRY_REPORTS[slug]
    rows = reports.complete(list(report.values(report.rows(lg.clinic, selectors.EntryFilter()))))
    assert rows
    for r in rows:  # text that must be escaped, in every text column a report shows
        for name in ("patient_name", "patient_address", "actor_name", "reason", "location__name"):
            if name in r:
                r[name] = f'<b>O\'Brien & "Co"</b> {r[name]}'
    written = reports.html_rows(report.columns, rows, BOSTON)
    assert written == _html_rows_as_before(report.columns, rows, BOSTON)
    assert "&lt;b&gt;O&#x27;Brien &amp; &quot;Co&quot;&lt;/b&gt;" in written
    assert reports.html_rows(report.columns, [], BOSTON) == ""


# The header row as _report_table.html wrote it before reports.header_html, verbatim.
_HEADER_TEMPLATE = (
    '<tr>{% for header, numeric in headers %}<th scope="col"{% if numeric %} class="num"'
    "{% endif %}>{{ header }}</th>{% endfor %}</tr>"
)


@pytest.mark.parametrize("slug", [*KIND_OF, "inventory", "ledger export", "awkward"])
def test_report_headers_are_written_as_the_template_wrote_them(slug: str) -> None:
    from django.template import Context, Template

    columns = {
        "inventory": reports.INVENTORY_COLUMNS,
        "ledger export": reports.LEDGER_COLUMNS,
        "awkward": (
            reports.Column("<Dose> & \"mg\" 'per'", lambda r, tz: "", numeric=True),
            reports.Column("Plain", lambda r, tz: ""),
        ),
    }.get(slug) or reports.ENTRY_REPORTS[slug].columns
    expected = Template(_HEADER_TEMPLATE).render(
        Context({"headers": [(c.header, c.numeric) for c in columns]})
    )
    assert reports.header_html(columns) == expected
    assert expected.count("<th ") == len(columns)


@pytest.mark.parametrize("kind", ["", EntryKind.ADMINISTER, EntryKind.REVERSAL])
def test_first_pages_read_together_equal_the_querysets(month: Ledger, kind: str) -> None:
    lg = month
    fields = reports.LEDGER_PAGE_FIELDS
    f = selectors.EntryFilter(kind=kind)
    newest = list(selectors.entries(lg.clinic, f).values(*fields)[:3])
    count = selectors.entries(lg.clinic, f).count()
    assert selectors.newest_entry_rows(lg.clinic, f, fields, 3) == newest
    assert selectors.newest_page(lg.clinic, f, fields, 3, first_page=True) == (count, newest)
    assert selectors.newest_page(lg.clinic, f, fields, 3, first_page=False) == (count, None)
    report = reports.WASTE  # no reversal of a waste in the fixture: compiled reads
    dates = selectors.EntryFilter(date_from=datetime(2026, 3, 3, tzinfo=BOSTON).date())
    qs = report.rows(lg.clinic, dates, [])
    first = list(report.values(qs)[:3])
    together = selectors.kind_page(
        lg.clinic, report.kind, dates, [], report.fields, 3, first_page=True
    )
    assert together == (selectors.totals(qs), first)
    assert selectors.kind_page(
        lg.clinic, report.kind, dates, [], report.fields, 3, first_page=False
    ) == (selectors.totals(qs), None)


def test_a_page_number_that_is_no_number_shows_the_first_page(month: Ledger, client_for) -> None:
    lg = month
    nurse = client_for("nurse")
    base = reverse("controlled_substances:ledger", args=[lg.clinic.pk])
    first, garbled = (
        nurse.get(f"{base}?kind=administer{page}").content.decode() for page in ("", "&page=x")
    )

    def body(page: str) -> str:
        return page.split('id="ledger"', 1)[1].split("<tbody>", 1)[1].split("</tbody>", 1)[0]

    doses = LedgerEntry.objects.filter(clinic=lg.clinic, kind=EntryKind.ADMINISTER).count()
    assert body(first) == body(garbled) and body(first).count("<tr>") == doses
