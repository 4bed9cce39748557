from datetime import timedelta

from django.apps import AppConfig
from django.conf import settings


class MeasuresConfig(AppConfig):
    name = "ketaclinic.measures"
    label = "measures"
    verbose_name = "Measurement-based care"

    def ready(self) -> None:
        from ketaclinic.core import periodic
        from ketaclinic.measures import chart_panel, tasks

        periodic.register(
            tasks.measurement_tick,
            every=timedelta(seconds=settings.KETACLINIC_MEASURES_TICK_SECONDS),
        )
        chart_panel.register()
