from django.urls import include, path

from config.api import api

urlpatterns = [
    path("", include("ketaclinic.core.urls")),
    path("accounts/", include("ketaclinic.accounts.urls")),
    path("patients/", include("ketaclinic.patients.urls")),
    path("audit/", include("ketaclinic.audit.urls")),
    path("screening/", include("ketaclinic.screening.urls")),
    path("courses/", include("ketaclinic.courses.urls")),
    path("measures/", include("ketaclinic.measures.urls")),
    path("portal/", include("ketaclinic.portal.urls")),
    path("controlled-substances/", include("ketaclinic.controlled_substances.urls")),
    path("sessions/", include("ketaclinic.treatment_sessions.urls")),
    path("api/v1/", api.urls),
]

handler400 = "ketaclinic.core.views.bad_request"
handler403 = "ketaclinic.core.views.permission_denied"
handler404 = "ketaclinic.core.views.page_not_found"
handler500 = "ketaclinic.core.views.server_error"
