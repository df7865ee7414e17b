"""App configuration for the workflows portal."""

from django.apps import AppConfig


class WorkflowsAppConfig(AppConfig):
    """The portal's single Django app."""

    name = "workflows_app"
    verbose_name = "Nexthink Workflows portal"
    default_auto_field = "django.db.models.BigAutoField"
