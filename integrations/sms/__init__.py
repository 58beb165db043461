"""SMS providers: Twilio (``twilio.py``, through the official SDK) and Vonage
(``vonage.py``, the SMS API over plain HTTP). Both send through ``integrations.http`` and
take delivery receipts and inbound SMS at ``/webhooks/<provider>/<token>/``."""
