"""Messaging, a sub-app of clinic (label ``messaging``): messages to and from patients —
which channel, what text, what happened (DESIGN.md "Messaging and consent").

``integrations`` knows channels and providers (send this text to this number through the
chain; parse what comes back). This app knows the patient, in modules by subject:

- ``catalogue``: the named templates, their default pt-BR texts, purposes and variables;
- ``rendering``: a template's text for a clinic (its own, ``MessageTemplate``, or the
  default) filled in for a patient;
- ``channels``: which channels a message may go on, by preference and consent;
- ``sending``: ``message_send`` records an ``OutboundMessage`` under a unique idempotency
  key and enqueues its delivery after commit; ``messages_send_many`` for the sweeps;
- ``delivery``: ``message_deliver`` claims a send, tries each channel's provider chain with
  no transaction open, and records the outcome — or why nothing was sent;
- ``retries``: the sweep that sends again what is due;
- ``receipts``: delivery and read receipts move a message forward, never back;
- ``replies``: what patients write, opt-outs ("SAIR") and the ``reply_handler`` registry
  through which higher apps (scheduling) act on replies; reception's answers;
- ``birthdays``: the birthday greetings;
- ``selectors``, ``admin`` (texts, messages, the unanswered inbox, the patient's timeline),
  ``tasks``, ``handlers`` (``message.inbound``, ``message.status``, anymail's tracking),
  ``privacy`` (its part of the LGPD export and of anonymisation).

Callers use ``clinic.messaging.services``, which re-exports the public functions. This
module imports nothing: the app registry loads it before any model exists.
"""
