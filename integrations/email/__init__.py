"""E-mail providers: every ESP that django-anymail supports, one provider account per ESP
(``anymail_esp.py``); a chain of ESPs is a chain of accounts."""
