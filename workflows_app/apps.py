"""App configuration for the workflows portal."""

from django.apps import AppConfig


class WorkflowsAppConfig(AppConfig):
    """The portal's single Django app."""

    name = "workflows_app"
    verbose_name = "Nexthink Workflows portal"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        """Audit sign-ins, failed sign-ins and sign-outs."""
        from django.contrib.auth import signals

        from workflows_app import receivers

        signals.user_logged_in.connect(receivers.signed_in, dispatch_uid="audit-signed-in")
        signals.user_login_failed.connect(
            receivers.sign_in_failed, dispatch_uid="audit-sign-in-failed"
        )
        signals.user_logged_out.connect(receivers.signed_out, dispatch_uid="audit-signed-out")
