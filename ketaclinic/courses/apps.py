from django.apps import AppConfig


class CoursesConfig(AppConfig):
    name = "ketaclinic.courses"
    label = "courses"

    def ready(self) -> None:
        from ketaclinic.courses.chart_panel import courses_facts, courses_panel, courses_prepare
        from ketaclinic.patients import chart

        chart.register(
            chart.Panel(
                key="courses",
                title="Treatment courses",
                order=30,
                template="courses/chart_panel.html",
                html=chart.stylesheet_then_html("css/treatment.css"),
                context=courses_panel,
                facts=courses_facts,
                prepare=courses_prepare,
            )
        )
