"""Pages of treatment sessions at /sessions/."""

from django.urls import path

from ketaclinic.treatment_sessions import views, views_board

app_name = "treatment_sessions"

# One session's pages (issue 6): the workspace, each step's action, the note and the print view.
urlpatterns: list = [
    path("<int:session_id>/", views.workspace, name="workspace"),
    path("appointment/<int:appointment_id>/", views.for_appointment, name="for_appointment"),
    path("<int:session_id>/check-in/", views.check_in, name="check_in"),
    path("<int:session_id>/pre-dose/", views.pre_dose, name="pre_dose"),
    path("<int:session_id>/gate/acknowledge/", views.acknowledge_gate, name="acknowledge_gate"),
    path("<int:session_id>/gate/pass/", views.pass_gate, name="pass_gate"),
    path("<int:session_id>/order/", views.order, name="order"),
    path("<int:session_id>/order/preview/", views.order_preview, name="order_preview"),
    path("<int:session_id>/second-check/", views.second_check, name="second_check"),
    path("<int:session_id>/draw/", views.draw, name="draw"),
    path("<int:session_id>/start-dosing/", views.start_dosing, name="start_dosing"),
    path("<int:session_id>/device/", views.device, name="device"),
    path("<int:session_id>/observe/", views.start_observation, name="observe"),
    path("<int:session_id>/vitals/", views.vitals, name="vitals"),
    path("alerts/<int:alert_id>/acknowledge/", views.acknowledge_alert, name="acknowledge_alert"),
    path("<int:session_id>/cadss/", views.cadss, name="cadss"),
    path("<int:session_id>/interventions/", views.intervention, name="intervention"),
    path("<int:session_id>/adverse-events/", views.adverse_event, name="adverse_event"),
    path("<int:session_id>/discharge/assess/", views.assess_discharge, name="assess_discharge"),
    path("<int:session_id>/discharge/ready/", views.ready, name="ready"),
    path("<int:session_id>/discharge/", views.discharge, name="discharge"),
    path("<int:session_id>/instructions/", views.instructions, name="instructions"),
    path("<int:session_id>/sign/", views.sign, name="sign"),
    path("<int:session_id>/note/", views.note, name="note"),
    path("<int:session_id>/amend/", views.amend, name="amend"),
    path("<int:session_id>/cancel/", views.cancel, name="cancel"),
    path("<int:session_id>/stop/", views.stop_early, name="stop_early"),
]

# The room board and the REMS form worklist; views in views_board.py.
urlpatterns += [
    path("board/", views_board.room_board, name="board"),
    path("board/rows/", views_board.room_board_rows, name="board_rows"),
    path("rems/", views_board.rems_worklist, name="rems_worklist"),
    path("<int:session_id>/rems/submit/", views_board.rems_submit, name="rems_submit"),
    path("<int:session_id>/rems/print/", views_board.rems_print, name="rems_print"),
]
