"""URLs of fixed routes, reversed once per URLconf and script prefix.

Why: the navigation on every page reversed a dozen routes per request; the answer only changes
with the URLconf or the prefix the site is served under, so both are part of the key.
"""

from __future__ import annotations

from functools import lru_cache

from django.conf import settings
from django.urls import get_script_prefix, get_urlconf, reverse


@lru_cache(maxsize=512)
def _reversed(urlconf: str, prefix: str, name: str) -> str:
    return reverse(name, urlconf=urlconf)


def reverse_fixed(name: str) -> str:
    """`reverse(name)` for a route without arguments."""
    return _reversed(get_urlconf() or settings.ROOT_URLCONF, get_script_prefix(), name)


_STAND_IN = 918_273_645


@lru_cache(maxsize=512)
def _id_pattern(urlconf: str, prefix: str, name: str) -> tuple[str, ...]:
    return tuple(reverse(name, urlconf=urlconf, args=[_STAND_IN]).split(str(_STAND_IN)))


def reverse_with_id(name: str, object_id: int) -> str:
    """`reverse(name, args=[object_id])` for a route taking one integer id, reversed once."""
    urlconf, prefix = get_urlconf() or settings.ROOT_URLCONF, get_script_prefix()
    parts = _id_pattern(urlconf, prefix, name)
    if len(parts) != 2:  # the stand-in appears other than once: no shortcut
        return reverse(name, urlconf=urlconf, args=[object_id])
    return f"{parts[0]}{int(object_id)}{parts[1]}"
