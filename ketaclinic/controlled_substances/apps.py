from django.apps import AppConfig


class ControlledSubstancesConfig(AppConfig):
    name = "ketaclinic.controlled_substances"
    label = "controlled_substances"
    verbose_name = "Controlled substances"
