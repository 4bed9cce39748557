"""Django's template backend, with each page's context let go as soon as the page is written.

Why: the RequestContext Django makes for a render and the dict it pushes for the view's
context refer to each other (ContextDict.context), so everything a view passes to its template
outlives the response until CPython's cyclic garbage collector finds it, instead of being freed
by reference counting when the page is written. For most pages that is a few objects; the
two-year chart passes hundreds of score points, chart dots and session markers. Left to the
collector, they kept it busy: on the bench's two-year chart it ran 1.44 times per request
(0.5 ms each), and, once such garbage had piled up into the oldest generation, a full
collection took about 100 ms. With the context let go, 0.92 collections per request of 0.4 ms,
and none of the full ones in the same 300 charts.

Select it in TEMPLATES with "BACKEND": "ketaclinic.core.templates.DjangoTemplates" and
"NAME": "django" (the alias would otherwise be "templates"); it is Django's backend otherwise
(same options, same engine, same errors).
"""

from __future__ import annotations

from html import escape as _escape
from typing import Any

from django.template.backends import django as django_backend
from django.template.context import make_context
from django.template.exceptions import TemplateDoesNotExist
from django.utils.formats import localize
from django.utils.html import conditional_escape


class Template(django_backend.Template):
    def render(self, context: dict[str, Any] | None = None, request: Any = None) -> str:
        made = make_context(context, request, autoescape=self.backend.engine.autoescape)
        try:
            return self.template.render(made)  # type: ignore[no-any-return]
        except TemplateDoesNotExist as exc:
            django_backend.reraise(exc, self.backend)  # type: ignore[attr-defined]
            raise  # not reached: reraise raises
        finally:
            # The page is written: drop the context's dicts, and with them the cycle between
            # the context and the view's dict. (The test client's copy of a context, for
            # response.context, has a list of its own.)
            made.dicts.clear()


class DjangoTemplates(django_backend.DjangoTemplates):
    def from_string(self, template_code: str) -> Template:
        return Template(super().from_string(template_code).template, self)

    def get_template(self, template_name: str) -> Template:
        return Template(super().get_template(template_name).template, self)


def text(value: Any) -> str:
    """What `{{ value }}` writes, for HTML built in Python: numbers localized, everything
    escaped unless already safe."""
    if type(value) is str:
        # The common case, as Django's escape() writes it without its lazy-text wrapper and
        # the SafeString it builds (a panel writes dozens of texts per chart).
        return _escape(value)
    return str(conditional_escape(localize(value)))


def ascii_html(markup: str) -> str:
    """HTML written in ASCII: any other character as a numeric reference (U+2014 as &#8212;),
    the same text in a browser. Why: one character beyond Latin-1 makes Python keep a whole
    string at two bytes a character, and a page's long strings are joined, copied and encoded
    several times on the way out. Only for text and attribute values, never for the content
    of <script> or <style>, where references are not read."""
    if markup.isascii():
        return markup
    return markup.encode("ascii", "xmlcharrefreplace").decode("ascii")
