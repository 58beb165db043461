from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class SchedulingConfig(AppConfig):
    name = "scheduling"
    verbose_name = _("Scheduling")

    def ready(self):
        # Every plug-in point this app fills, named in one place (docs/architecture.md,
        # "Plug-in points"). Importing a module registers what it declares.
        from clinic.records.access import care_relationship

        from . import (
            assistant_tools,  # noqa: F401  the assistant's tools: availability, booking …
            handlers,  # noqa: F401  @subscriber: waitlist offers, booking and no-show messages
            reminders,  # noqa: F401  @reply_handler: "1"/"2"/"3" answers to a reminder
        )
        from .availability_cache import connect_signals
        from .services import appointment_in_care

        # The record's access rules: an appointment puts a patient in a professional's care.
        care_relationship(appointment_in_care)
        from .portal import export  # noqa: F401  @export_section: appointments, waiting list

        # Model signals: cached availability is dropped when what it was computed from changes.
        connect_signals()
