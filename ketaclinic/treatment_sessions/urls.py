"""Pages of treatment sessions at /sessions/."""

from django.urls import path  # noqa: F401

app_name = "treatment_sessions"

urlpatterns: list = []
