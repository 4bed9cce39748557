"""Small ORM expressions that Django 5.2 lacks in a form that works on PostgreSQL and SQLite."""

from __future__ import annotations

from typing import Any

from django.db.models import Aggregate, TextField


class JoinedText(Aggregate):
    """The group's text values joined with commas, in no particular order: STRING_AGG on
    PostgreSQL, GROUP_CONCAT on SQLite. NULL for an empty group. (Django 6.0 brings a generic
    StringAgg; this is the part of it we need on 5.2.)"""

    function = "STRING_AGG"
    template = "%(function)s(%(expressions)s, ',')"
    output_field = TextField()

    def as_sqlite(self, compiler: Any, connection: Any, **extra_context: Any) -> Any:
        return self.as_sql(compiler, connection, function="GROUP_CONCAT", **extra_context)
