from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class MessagingConfig(AppConfig):
    name = "clinic.messaging"
    label = "messaging"
    verbose_name = _("Messaging")

    def ready(self):
        # Its plug-ins into clinic's core and into anymail, which import nothing of it:
        from anymail.signals import tracking

        from clinic.privacy import patient_anonymising

        from . import privacy

        # Importing handlers registers its @subscriber functions (message.inbound,
        # message.status) too.
        from .handlers import anymail_tracking_received

        # E-mail delivery/read receipts arrive through anymail's tracking signal.
        tracking.connect(anymail_tracking_received, dispatch_uid="clinic.anymail_tracking")
        # "Download my data" gets the messages sent and received (importing ``privacy``
        # registers its export sections); anonymisation erases the addresses in the log.
        patient_anonymising.connect(
            privacy.erase_message_addresses, dispatch_uid="messaging.addresses_anonymise"
        )
