from django.urls import path  # noqa: F401

app_name = "controlled_substances"

urlpatterns: list = []
