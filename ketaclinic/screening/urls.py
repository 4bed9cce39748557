from django.urls import path

from ketaclinic.screening import views

app_name = "screening"

urlpatterns = [
    path("", views.referral_queue, name="queue"),
    path("referrals/new/", views.referral_new, name="referral_new"),
    path("patients/<int:patient_id>/referral/", views.referral_existing, name="referral_existing"),
    path("intakes/<int:intake_id>/", views.intake_edit, name="intake_edit"),
    path("intakes/<int:intake_id>/status/", views.intake_status, name="intake_status"),
    path("patients/<int:patient_id>/", views.workspace, name="workspace"),
    path("patients/<int:patient_id>/psychiatric/", views.psychiatric_history, name="psychiatric"),
    path("patients/<int:patient_id>/medical/", views.medical_history, name="medical"),
    path("patients/<int:patient_id>/pdmp/", views.pdmp, name="pdmp"),
    path("patients/<int:patient_id>/vitals/", views.vitals, name="vitals"),
    path("patients/<int:patient_id>/transport/", views.transport, name="transport"),
    path("patients/<int:patient_id>/rems/", views.rems, name="rems"),
    path("patients/<int:patient_id>/history/<slug:kind>/new/", views.item_new, name="item_new"),
    path("history/<slug:kind>/<int:item_id>/", views.item_edit, name="item_edit"),
    path("history/<slug:kind>/<int:item_id>/remove/", views.item_remove, name="item_remove"),
    path(
        "patients/<int:patient_id>/measures/<slug:instrument>/",
        views.measure_new,
        name="measure_new",
    ),
    path("patients/<int:patient_id>/eligibility/", views.eligibility, name="eligibility"),
    path("patients/<int:patient_id>/eligibility/override/", views.override, name="override"),
    path("patients/<int:patient_id>/consent/<slug:consent_kind>/", views.consent, name="consent"),
    path("consents/<int:consent_id>/withdraw/", views.consent_withdraw, name="consent_withdraw"),
    path("consent-texts/", views.consent_texts, name="consent_texts"),
]
