"""What the clinical record does when clinic's core changes (connected in apps.py)."""


def clinic_saved(sender, instance, created, raw=False, **kwargs):
    """A new clinic gets the default clinical templates (not when loading fixtures)."""
    if created and not raw:
        from .template_services import install_default_templates

        install_default_templates(instance)
