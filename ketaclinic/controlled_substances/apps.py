from django.apps import AppConfig


class ControlledSubstancesConfig(AppConfig):
    name = "ketaclinic.controlled_substances"
    label = "controlled_substances"
    verbose_name = "Controlled substances"

    def ready(self) -> None:
        from ketaclinic.controlled_substances.views import (
            chart_panel,
            chart_panel_facts,
            chart_panel_html,
            chart_panel_prepare,
        )
        from ketaclinic.patients import chart

        chart.register(
            chart.Panel(
                key="controlled_substances",
                title="Ketamine and esketamine given",
                order=60,
                template="controlled_substances/chart_panel.html",
                context=chart_panel,
                facts=chart_panel_facts,
                prepare=chart_panel_prepare,
                html=chart_panel_html,
            )
        )
