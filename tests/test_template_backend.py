"""The template backend lets a page's context go when the page is written (core.templates):
what a view passes to its template is freed by reference counting, not left for the cyclic
garbage collector."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator
from datetime import date
from decimal import Decimal

import pytest
from django.template import TemplateDoesNotExist, engines
from django.test import RequestFactory
from django.utils.safestring import mark_safe

from ketaclinic.core.templates import DjangoTemplates, text


class Scores:
    """Something a view passes to a template (a plain object can be watched with a weakref)."""

    def __init__(self) -> None:
        self.points = [{"total": n} for n in range(3)]


@pytest.fixture
def no_cyclic_collector() -> Iterator[None]:
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def test_the_project_renders_with_the_freeing_backend() -> None:
    assert isinstance(engines["django"], DjangoTemplates)


@pytest.mark.parametrize("with_request", [True, False])
def test_the_views_context_is_freed_when_the_page_is_written(
    no_cyclic_collector: None, with_request: bool
) -> None:
    request = RequestFactory().get("/") if with_request else None
    template = engines["django"].from_string(
        "{% for p in scores.points %}{{ p.total }};{% endfor %}{% with n=scores.points|length %}"
        "{{ n }}{% endwith %}"
    )
    scores = Scores()
    watched = weakref.ref(scores)
    html = template.render({"scores": scores}, request)
    del scores
    assert html == "0;1;2;3"
    assert watched() is None  # freed at once, with the collector switched off


def test_with_djangos_own_backend_the_context_waits_for_the_collector(
    no_cyclic_collector: None,
) -> None:
    # Why the backend exists: Django's RequestContext and the view's dict refer to each other.
    from django.template.backends.django import Template as DjangosTemplate

    ours = engines["django"].from_string("{{ scores.points|length }}")
    template = DjangosTemplate(ours.template, ours.backend)
    scores = Scores()
    watched = weakref.ref(scores)
    assert template.render({"scores": scores}, RequestFactory().get("/")) == "3"
    del scores
    assert watched() is not None
    gc.collect()
    assert watched() is None


def test_missing_templates_raise_as_in_django() -> None:
    with pytest.raises(TemplateDoesNotExist):
        engines["django"].get_template("no/such/template.html")


def test_pages_still_give_their_context_to_tests(world, client_for) -> None:  # type: ignore[no-untyped-def]
    from django.urls import reverse

    page = client_for("nurse").get(reverse("patients:chart", args=[world.patient_a.pk]))
    assert page.status_code == 200
    assert page.context["patient"] == world.patient_a


@pytest.mark.parametrize(
    "value",
    [
        "Fish & <chips> \"quoted\" 'single'",
        mark_safe("<b>already safe</b>"),  # noqa: S308 - the point: kept as it is
        1234567,
        0.5,
        Decimal("12.50"),
        date(2026, 3, 4),
        None,
        True,
    ],
)
def test_text_writes_what_a_template_variable_writes(value: object) -> None:
    """core.templates.text, for panels that build their HTML in Python, writes each value as
    `{{ value }}` does in a template of the same engine."""
    template = engines["django"].from_string("{{ value }}")
    assert text(value) == template.render({"value": value})


@pytest.mark.parametrize(
    ("markup", "ascii"),
    [
        ("plain <b>text</b>", "plain <b>text</b>"),
        ("Clinic — Boston · Zoë", "Clinic &#8212; Boston &#183; Zo&#235;"),
        ("Response (−50%) ≤ 4 😀", "Response (&#8722;50%) &#8804; 4 &#128512;"),
    ],
)
def test_ascii_html_writes_other_characters_as_references(markup: str, ascii: str) -> None:
    import html

    from ketaclinic.core.templates import ascii_html

    assert ascii_html(markup) == ascii and html.unescape(ascii_html(markup)) == markup
