from django.urls import path

from ketaclinic.courses import views

app_name = "courses"

urlpatterns = [
    path("", views.course_list, name="list"),
    path("board/", views.day_board, name="board"),
    path("settings/", views.clinic_settings, name="settings"),
    path("new/<int:patient_id>/", views.course_create, name="create"),
    path("<int:course_id>/", views.course_detail, name="detail"),
    path("<int:course_id>/status/", views.course_status, name="status"),
    path("<int:course_id>/goals/", views.goal_add, name="goal_add"),
    path("<int:course_id>/booster/", views.booster_add, name="booster"),
    path("<int:course_id>/maintenance/", views.maintenance, name="maintenance"),
    path("<int:course_id>/estimate/", views.estimate, name="estimate"),
    path("appointments/<int:appointment_id>/", views.appointment_detail, name="appointment"),
    path(
        "appointments/<int:appointment_id>/reschedule/",
        views.appointment_reschedule,
        name="reschedule",
    ),
    path("appointments/<int:appointment_id>/cancel/", views.appointment_cancel, name="cancel"),
    path("appointments/<int:appointment_id>/missed/", views.appointment_missed, name="missed"),
    path(
        "appointments/<int:appointment_id>/complete/", views.appointment_complete, name="complete"
    ),
    path("appointments/<int:appointment_id>/dose/", views.appointment_dose, name="dose"),
]
