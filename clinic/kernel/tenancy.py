"""The tenancy queryset: ``Model.objects.for_clinic(clinic)``, the one way a query is scoped
to a clinic. The abstract ``ClinicOwned`` model that carries it and the request's current
clinic live in ``clinic.tenancy`` (they belong to the Clinic model)."""

from __future__ import annotations

from typing import Any

from django.db import models


class ClinicQuerySet(models.QuerySet):
    def for_clinic(self, clinic: Any) -> ClinicQuerySet:
        """Rows of one clinic (a Clinic or its id). ``None`` means no clinic, so nothing
        (never "everything")."""
        if clinic is None:
            return self.none()
        return self.filter(clinic=clinic)
