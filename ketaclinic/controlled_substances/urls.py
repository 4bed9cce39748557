from django.urls import path

from ketaclinic.controlled_substances import views

app_name = "controlled_substances"

C = "<int:clinic_id>/"

urlpatterns = [
    path("", views.index, name="index"),
    path(C, views.balances, name="balances"),
    path(C + "ledger/", views.ledger, name="ledger"),
    path(C + "ledger/export.csv", views.ledger_csv, name="ledger_csv"),
    path(C + "ledger/<int:seq>/", views.entry_detail, name="entry"),
    path(C + "ledger/<int:seq>/reverse/", views.entry_reverse, name="entry_reverse"),
    path(C + "receive/", views.receive, name="receive"),
    path(C + "administer/", views.administer, name="administer"),
    path(C + "administer/preview/", views.administer_preview, name="administer_preview"),
    path(C + "waste/", views.waste, name="waste"),
    path(C + "transfer/", views.transfer, name="transfer"),
    path(C + "dispose/", views.dispose, name="dispose"),
    path(C + "adjust/", views.adjust, name="adjust"),
    path(C + "loss/", views.loss, name="loss"),
    path(C + "counts/", views.counts, name="counts"),
    path(C + "counts/new/<int:location_id>/", views.count_new, name="count_new"),
    path(C + "counts/<int:count_id>/", views.count_detail, name="count"),
    path(C + "investigations/", views.investigations, name="investigations"),
    path(
        C + "investigations/<int:investigation_id>/",
        views.investigation_detail,
        name="investigation",
    ),
    path(C + "reports/", views.report_index, name="reports"),
    path(C + "reports/<slug:report>/", views.report_page, name="report"),
    path(C + "reports/<slug:report>/print/", views.report_print, name="report_print"),
    path(C + "reports/<slug:report>/export.csv", views.report_csv, name="report_csv"),
    path(C + "catalogue/", views.catalogue, name="catalogue"),
    path(C + "catalogue/products/new/", views.product_new, name="product_new"),
    path(C + "catalogue/locations/new/", views.location_new, name="location_new"),
]
