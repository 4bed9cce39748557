"""Every URL pattern and every API operation the project serves, discovered, never listed by hand.

The authorization matrix, the MFA sweep and the demo-banner sweep walk these, so a new page or
endpoint is covered (or, in the matrix, fails until it declares its expectations) without anyone
remembering to add it to a test.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from django.urls import URLPattern, URLResolver, get_resolver, reverse
from django.urls.resolvers import RoutePattern

from config.api import api

_PARAM = re.compile(r"<(?:(?P<converter>[^>:]+):)?(?P<name>[^>]+)>")
_SAMPLE = {
    "int": 1,
    "slug": "x",
    "str": "x",
    "path": "x",
    "uuid": "00000000-0000-0000-0000-000000000000",
}


@dataclass(frozen=True)
class UrlRoute:
    """One Django URL pattern: `key` is "namespace:name", `route` the full pattern text."""

    key: str
    route: str
    params: tuple[str, ...]
    converters: tuple[str, ...] = ()

    def path(self, **values: object) -> str:
        """The concrete path with each <param> replaced by its value."""

        def sub(match: re.Match[str]) -> str:
            return str(values[match.group("name")])

        return "/" + _PARAM.sub(sub, self.route)

    def sample_path(self, known: dict[str, object]) -> str:
        """The path with known values where given, a value of the right shape elsewhere.

        For checks that run before any view looks at the object (sign-in, MFA, the banner).
        """
        values = {
            name: known.get(name, _SAMPLE.get(conv, "x"))
            for name, conv in zip(self.params, self.converters, strict=True)
        }
        return self.path(**values)

    @property
    def is_api(self) -> bool:
        return self.route.startswith(api_prefix().lstrip("/"))


@dataclass(frozen=True)
class ApiOperation:
    """One operation of the OpenAPI schema: `key` is its operationId."""

    key: str
    method: str
    path_template: str  # OpenAPI style: /api/v1/patients/{patient_id}
    params: tuple[str, ...]

    def path(self, **values: object) -> str:
        return re.sub(r"\{(\w+)\}", lambda m: str(values[m.group(1)]), self.path_template)

    def sample_path(self, known: dict[str, object]) -> str:
        """The path with known values where given and an id-shaped value (1) elsewhere."""
        return self.path(**{name: known.get(name, _SAMPLE["int"]) for name in self.params})


def api_prefix() -> str:
    """Where the API is mounted, e.g. "/api/v1/"."""
    return reverse(f"{api.urls_namespace}:api-root")


def _walk(resolver: URLResolver, prefix: str, namespace: str) -> list[UrlRoute]:
    found: list[UrlRoute] = []
    for entry in resolver.url_patterns:
        if isinstance(entry, URLResolver):
            ns = namespace
            if entry.namespace:
                ns = f"{namespace}:{entry.namespace}" if namespace else entry.namespace
            found.extend(_walk(entry, prefix + str(entry.pattern), ns))
        elif isinstance(entry, URLPattern):
            if not isinstance(entry.pattern, RoutePattern):
                raise AssertionError(f"regex URL pattern {entry.pattern} needs a route here")
            route = prefix + str(entry.pattern)
            name = f"{namespace}:{entry.name}" if namespace else str(entry.name)
            matches = list(_PARAM.finditer(route))
            params = tuple(m.group("name") for m in matches)
            converters = tuple(m.group("converter") or "str" for m in matches)
            found.append(UrlRoute(name, route, params, converters))
    return found


def url_routes() -> list[UrlRoute]:
    """Every URL pattern of the root URLconf, recursively through include()."""
    return _walk(get_resolver(), "", "")


def api_operations() -> list[ApiOperation]:
    """Every operation (path × method) of the API's OpenAPI schema."""
    schema = api.get_openapi_schema()
    ops = []
    for path, methods in schema["paths"].items():
        for method, operation in methods.items():
            params = tuple(
                p["name"] for p in operation.get("parameters", []) if p.get("in") == "path"
            )
            ops.append(ApiOperation(operation["operationId"], method.upper(), path, params))
    return ops


def api_operation_routes() -> set[str]:
    """URL routes that serve an operation of the schema (covered by the operation matrix)."""
    return {re.sub(r"\{(\w+)\}", r"<\1>", op.path_template).lstrip("/") for op in api_operations()}


def page_routes() -> list[UrlRoute]:
    """URL patterns outside the API: the pages a browser reaches."""
    return [r for r in url_routes() if not r.is_api]
