from django.apps import AppConfig


class ScreeningConfig(AppConfig):
    name = "ketaclinic.screening"
    label = "screening"

    def ready(self) -> None:
        from ketaclinic.patients import chart
        from ketaclinic.screening.chart_panel import intake_facts, intake_panel, intake_prepare

        chart.register(
            chart.Panel(
                key="intake",
                title="Intake and eligibility",
                order=20,
                template="screening/chart_panel.html",
                html=chart.stylesheet_then_html("css/treatment.css"),
                context=intake_panel,
                facts=intake_facts,
                prepare=intake_prepare,
            )
        )
