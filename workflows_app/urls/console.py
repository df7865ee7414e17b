"""Routes of the admin console (/console/); curation lives under /console/curation/."""

from django.urls import path

from workflows_app.views import audit, console, console_sync, dashboard, webhooks

app_name = "console"
urlpatterns = [
    path("", console.home, name="home"),
    path("sync/", console.sync_now, name="sync"),
    path("sync/state/", console_sync.sync_state, name="sync_state"),
    path("batches/<int:batch_id>/resend/", console.resend, name="resend"),
    path("audit/", audit.audit_log, name="audit"),
    path("audit/export.csv", audit.audit_export, name="audit_export"),
    path("dashboard/", dashboard.dashboard, name="dashboard"),
    path("dashboard/recount/", dashboard.recount, name="dashboard_recount"),
    path("webhooks/", webhooks.webhook_list, name="webhooks"),
    path("webhooks/<int:pk>/", webhooks.webhook_detail, name="webhook"),
    path("webhooks/<int:pk>/toggle/", webhooks.webhook_toggle, name="webhook_toggle"),
    path("webhooks/<int:pk>/remove/", webhooks.webhook_remove, name="webhook_remove"),
    path("webhooks/<int:pk>/test/", webhooks.webhook_test, name="webhook_test"),
]
