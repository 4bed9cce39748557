from django.apps import AppConfig


class TreatmentSessionsConfig(AppConfig):
    name = "ketaclinic.treatment_sessions"
    label = "treatment_sessions"
    verbose_name = "Treatment sessions"

    def ready(self) -> None:
        from ketaclinic.treatment_sessions import chart_panel

        chart_panel.register()
