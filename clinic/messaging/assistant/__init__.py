"""Sofia, the clinic's WhatsApp assistant (issue 24), part of the messaging app: the
conversations (``models``, ``services``), the rules that read patients (``normalize``,
``intents``, ``dates``), the dialogue (``engine``), the tools the apps above fill
(``tools``), the answers' delivery (``delivery``, ``tasks``) and the admin (``admin``).
See docs/assistant.md. This module imports nothing."""
