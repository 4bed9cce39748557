"""Pieces of the alert inbox written in Python (measures.views): each must give what the former
template (or Django's function) gave, byte for byte, on every branch.

tests/measures/reference/alert_filter_template.html is the former filter form of
measures/alert_inbox.html, kept here only to compare with."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

import pytest
from django.template import engines
from django.utils import translation
from django.utils.timesince import timesince

from ketaclinic.measures import forms
from ketaclinic.measures.selectors import AlertFilter
from ketaclinic.measures.views import _filter_html, _time_strings

REFERENCE = Path(__file__).parent / "reference" / "alert_filter_template.html"
CLINICS = [
    SimpleNamespace(pk=3, name='North <b>"Main"</b> & O\'Neil'),
    SimpleNamespace(pk=11, name="South"),
]


@pytest.mark.parametrize("status", ["open", "acknowledged", "all"])
@pytest.mark.parametrize("mine", [False, True])
@pytest.mark.parametrize("clinic_id", [None, 3, 11, 99])
@pytest.mark.parametrize("clinics", [CLINICS, []])
def test_filter_form_is_written_as_the_template_wrote_it(status, mine, clinic_id, clinics):
    query = AlertFilter(status=status, mine=mine, clinic_id=clinic_id)
    expected = (
        engines["django"]
        .from_string(REFERENCE.read_text().removesuffix("\n"))
        .render(
            {"form": forms.AlertFilterForm(clinics=clinics), "query": query, "clinics": clinics}
        )
    )
    assert str(_filter_html(query, clinics)) == expected
    if clinics:
        assert "North &lt;b&gt;&quot;Main&quot;&lt;/b&gt; &amp; O&#x27;Neil" in expected
    assert expected.count(" selected") == 1 + (clinic_id in (3, 11) and bool(clinics))


NOW = datetime(2026, 3, 1, 0, 30, 15, 123_456, tzinfo=UTC)  # just after a month's end


@pytest.mark.parametrize("language", ["en", "de"])
def test_kept_time_strings_give_what_timesince_gives(language):
    """The inbox's waiting and outcome times use timesince with its texts kept per language
    and number: the same text for the future, minutes, hours, days, weeks, months and years."""
    minutes = [*range(-2, 130), *range(1430, 1450), *range(10070, 10090), 44_000, 600_000]
    with translation.override(language):
        kept = _time_strings()
        for m in minutes:
            for seconds in (0, 59):
                d = NOW - timedelta(minutes=m, seconds=seconds)
                assert timesince(d, NOW, time_strings=kept) == timesince(d, NOW), (m, seconds)
        assert _time_strings() is kept  # built once per language
        hour = timesince(NOW - timedelta(minutes=65), NOW, time_strings=kept)
    assert hour == {"en": "1\xa0hour, 5\xa0minutes", "de": "1\xa0Stunde, 5\xa0Minuten"}[language]
    assert _time_strings() is not kept  # another language (en-us) has texts of its own
