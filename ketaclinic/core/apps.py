from typing import Any

from django.apps import AppConfig
from django.db.backends.signals import connection_created

# Prepared statements a PostgreSQL connection keeps (psycopg's default is 100, fewer than the
# compiled queries of every page and API path, by parameter types; core.compiled_query).
PREPARED_STATEMENTS_PER_CONNECTION = 1000


def _keep_prepared_statements(sender: Any, connection: Any, **kwargs: Any) -> None:
    if connection.vendor == "postgresql" and hasattr(connection.connection, "prepared_max"):
        connection.connection.prepared_max = PREPARED_STATEMENTS_PER_CONNECTION


class CoreConfig(AppConfig):
    name = "ketaclinic.core"
    label = "core"

    def ready(self) -> None:
        connection_created.connect(_keep_prepared_statements, dispatch_uid="core.prepared_max")
