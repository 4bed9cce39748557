from django.urls import path

from ketaclinic.portal import views

app_name = "portal"

urlpatterns = [
    path("", views.home, name="home"),
    path("questionnaires/<int:assignment_id>/", views.questionnaire_page, name="questionnaire"),
    path(
        "questionnaires/<int:assignment_id>/done/",
        views.questionnaire_done,
        name="questionnaire_done",
    ),
    path("q/<str:token>/", views.link_start, name="link_start"),
    path("checkin/", views.checkin, name="checkin"),
    path("journal/", views.journal, name="journal"),
    path("journal/<int:entry_id>/share/", views.journal_share, name="journal_share"),
    path("progress/", views.progress, name="progress"),
    path("progress/report/", views.progress_report, name="progress_report"),
    path("progress/scores.csv", views.scores_csv, name="scores_csv"),
    path("sessions/", views.sessions, name="sessions"),
    path("aftercare/", views.aftercare, name="aftercare"),
    path("crisis/", views.crisis, name="crisis"),
]
