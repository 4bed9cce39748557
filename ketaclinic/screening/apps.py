from django.apps import AppConfig


class ScreeningConfig(AppConfig):
    name = "ketaclinic.screening"
    label = "screening"
