from django.urls import path

from ketaclinic.audit import views

app_name = "audit"

urlpatterns = [
    path("", views.audit_report_page, name="report"),
    path("export.csv", views.audit_report_csv, name="report_csv"),
]
