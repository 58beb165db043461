"""Serializer fields every partner endpoint uses for times: ISO 8601 in the clinic's time
zone (``context["clinic"]``), offset included; input must carry an offset."""

from __future__ import annotations

import contextlib

from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext_lazy as _
from rest_framework import serializers

from clinic.kernel.timezones import clinic_zone

#: The years a partner may send: a datetime past them is a mistake, and near year 9999
#: adding a duration or a time zone overflows.
YEARS = (1900, 2999)


class StrictPrimaryKeyRelatedField(serializers.PrimaryKeyRelatedField):
    """A primary key as JSON gives it: an integer (or its digits, in a query string). A
    float or a boolean is refused, never truncated (``3.9`` is not patient 3)."""

    def to_internal_value(self, data):
        if isinstance(data, bool | float) or (isinstance(data, str) and not data.strip().isdigit()):
            self.fail("incorrect_type", data_type=type(data).__name__)
        return super().to_internal_value(data)


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
        "out_of_range": _("Must be between the years {first} and {last}."),
    }

    def to_internal_value(self, value):
        if isinstance(value, str):
            parsed = None
            with contextlib.suppress(ValueError):  # malformed: the parent says how
                parsed = parse_datetime(value.strip())
            if parsed is not None and timezone.is_naive(parsed):
                self.fail("naive")
        value = super().to_internal_value(value)
        if not YEARS[0] <= value.year <= YEARS[1]:
            self.fail("out_of_range", first=YEARS[0], last=YEARS[1])
        return value
