from django.urls import path

from ketaclinic.measures import views

app_name = "measures"

urlpatterns = [
    path("alerts/", views.alert_inbox, name="alert_inbox"),
    path("alerts/<int:alert_id>/", views.alert_detail, name="alert_detail"),
    path("duty/", views.duty, name="duty"),
    path("boosters/<int:recommendation_id>/", views.booster_resolve, name="booster_resolve"),
    path("patients/<int:patient_id>/enrol/", views.enrol, name="enrol"),
    path("patients/<int:patient_id>/end/", views.enrolment_end, name="enrolment_end"),
    path("patients/<int:patient_id>/assign/", views.assign, name="assign"),
    path(
        "patients/<int:patient_id>/enter/<slug:instrument>/",
        views.score_entry,
        name="score_entry",
    ),
    path(
        "patients/<int:patient_id>/responses/<int:response_id>/",
        views.response_detail,
        name="response_detail",
    ),
    path("patients/<int:patient_id>/report/", views.report, name="report"),
    path("patients/<int:patient_id>/scores.csv", views.scores_csv, name="scores_csv"),
    path("patients/<int:patient_id>/journal/", views.shared_journal, name="shared_journal"),
    path("plans/", views.plan_list, name="plan_list"),
    path("plans/<int:plan_id>/", views.plan_detail, name="plan_detail"),
    path("plans/<int:plan_id>/items/", views.plan_item_add, name="plan_item_add"),
    path(
        "plans/<int:plan_id>/items/<int:item_id>/retire/",
        views.plan_item_retire,
        name="plan_item_retire",
    ),
    path("settings/<int:clinic_id>/", views.policy_update, name="policy_update"),
    path("outcomes/", views.outcomes, name="outcomes"),
]
