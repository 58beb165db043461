"""A password validator for Django's AUTH_PASSWORD_VALIDATORS: the new password differs
from the user's last N, and each new password is recorded (Django calls
``password_changed`` after a user with a new password is saved)."""

from __future__ import annotations

from django.contrib.auth.hashers import check_password
from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _
from django.utils.translation import ngettext


class PasswordHistoryValidator:
    def __init__(self, history: int = 5):
        self.history = history

    def _recent(self, user):
        from .models import PasswordHistory

        if user is None or user.pk is None:
            return []
        return list(
            PasswordHistory.objects.filter(user_id=user.pk).values_list("password", flat=True)[
                : self.history
            ]
        )

    def validate(self, password, user=None):
        for encoded in self._recent(user):
            if check_password(password, encoded):
                raise ValidationError(
                    ngettext(
                        "Choose a password different from your last one.",
                        "Choose a password different from your last %(count)d.",
                        self.history,
                    )
                    % {"count": self.history},
                    code="password_reused",
                )

    def password_changed(self, password, user=None):
        from .models import PasswordHistory

        if user is None or user.pk is None:
            return
        PasswordHistory.objects.create(user_id=user.pk, password=user.password)
        keep = PasswordHistory.objects.filter(user_id=user.pk).values_list("pk", flat=True)[
            : self.history
        ]
        PasswordHistory.objects.filter(user_id=user.pk).exclude(pk__in=list(keep)).delete()

    def get_help_text(self):
        return _("Your password must differ from your recent ones.")
