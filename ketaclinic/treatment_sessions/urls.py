"""Pages of treatment sessions at /sessions/."""

from django.urls import path  # noqa: F401

app_name = "treatment_sessions"

urlpatterns: list = []


# The room board and the REMS form worklist (issue 6); views in views_board.py.
from ketaclinic.treatment_sessions import views_board  # noqa: E402

board_urlpatterns = [
    path("board/", views_board.room_board, name="board"),
    path("board/rows/", views_board.room_board_rows, name="board_rows"),
    path("rems/", views_board.rems_worklist, name="rems_worklist"),
    path("<int:session_id>/rems/submit/", views_board.rems_submit, name="rems_submit"),
    path("<int:session_id>/rems/print/", views_board.rems_print, name="rems_print"),
]
urlpatterns += board_urlpatterns
