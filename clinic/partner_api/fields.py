"""Serializer fields every partner endpoint uses for times: ISO 8601 in the clinic's time
zone (``context["clinic"]``), offset included; input must carry an offset."""

from __future__ import annotations

import contextlib

from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext_lazy as _
from rest_framework import serializers

from clinic.kernel.timezones import clinic_zone


class ClinicTimeField(serializers.DateTimeField):
    """A datetime as it is read at the clinic: ISO 8601 in the clinic's time zone
    (``context["clinic"]``), offset included."""

    def default_timezone(self):
        clinic = self.context.get("clinic")
        return clinic_zone(clinic) if clinic is not None else super().default_timezone()


class ClinicDateTimeField(ClinicTimeField):
    """ISO 8601 in the clinic's time zone, offset included; input must carry an offset."""

    default_error_messages = {
        "naive": _("Include the UTC offset, e.g. 2026-03-02T09:00:00-03:00."),
    }

    def to_internal_value(self, value):
        if isinstance(value, str):
            parsed = None
            with contextlib.suppress(ValueError):  # malformed: the parent says how
                parsed = parse_datetime(value.strip())
            if parsed is not None and timezone.is_naive(parsed):
                self.fail("naive")
        return super().to_internal_value(value)
