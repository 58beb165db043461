"""Tenancy: the one way every query is scoped to a clinic.

- Models owned by a clinic inherit :class:`ClinicOwned`; their manager offers
  ``Model.objects.for_clinic(clinic)`` (:class:`ClinicQuerySet`).
- For a request (admin, staff in the partner API) :func:`current_clinic` says which clinic
  the user works in: the one chosen in the clinic switcher (kept in the session) if the
  user is a member of it, otherwise their first clinic. Superusers may also work with no
  clinic selected, which means "all clinics".

The kernel imports no app: the Clinic model is named by its label (``clinic.Clinic``), as a
foreign key names it, and looked up in the app registry when a request needs it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.apps import apps
from django.db import models
from django.utils.translation import gettext_lazy as _

if TYPE_CHECKING:
    from django.http import HttpRequest

CLINIC_MODEL = "clinic.Clinic"
SESSION_KEY = "cuidar_clinic_id"
ALL_CLINICS = "all"  # what a superuser picks in the switcher to see every clinic


class ClinicQuerySet(models.QuerySet):
    def for_clinic(self, clinic: Any) -> ClinicQuerySet:
        """Rows of one clinic (a Clinic or its id). ``None`` means no clinic, so nothing
        (never "everything")."""
        if clinic is None:
            return self.none()
        return self.filter(clinic=clinic)


class ClinicOwned(models.Model):
    """Abstract base of every tenant-owned row: it belongs to exactly one clinic."""

    clinic = models.ForeignKey(
        CLINIC_MODEL,
        on_delete=models.PROTECT,
        related_name="%(class)ss",
        verbose_name=_("clinic"),
    )

    objects = ClinicQuerySet.as_manager()

    class Meta:
        abstract = True


def other_clinic_object(clinic: Any, *objects: Any) -> Any | None:
    """The first of ``objects`` (``None`` entries skipped) that belongs to another clinic
    than ``clinic``, or ``None``. Services refuse such a mix; edges scope their choices, so
    one reaching a service is a bug or tampering."""
    clinic_id = getattr(clinic, "pk", clinic)
    for obj in objects:
        if obj is not None and obj.clinic_id != clinic_id:
            return obj
    return None


def clinics_for_user(user) -> models.QuerySet:
    """Active clinics the user may work in (every clinic for a superuser)."""
    clinic_model = apps.get_model(CLINIC_MODEL)
    if not getattr(user, "is_authenticated", False):
        return clinic_model.objects.none()
    clinics = clinic_model.objects.filter(is_active=True)
    if user.is_superuser:
        return clinics.order_by("name")
    return clinics.filter(memberships__user=user, memberships__is_active=True).order_by("name")


def available_clinics(request: HttpRequest) -> list:
    """The user's clinics, evaluated once per request (the switcher and scoping share it)."""
    cached = getattr(request, "_cuidar_clinics", None)
    if cached is None:
        cached = list(clinics_for_user(request.user))
        request._cuidar_clinics = cached
    return cached


def current_clinic(request: HttpRequest):
    """The clinic the request works in, or ``None`` (a superuser viewing all clinics,
    or a user with no clinic at all)."""
    if hasattr(request, "_cuidar_clinic"):
        return request._cuidar_clinic
    clinics = available_clinics(request)
    chosen = request.session.get(SESSION_KEY) if hasattr(request, "session") else None
    clinic = None
    if chosen == ALL_CLINICS and request.user.is_superuser:
        clinic = None
    elif chosen is not None:
        clinic = next((c for c in clinics if c.pk == chosen), None)
    if clinic is None and chosen != ALL_CLINICS:
        clinic = clinics[0] if clinics and not request.user.is_superuser else None
    request._cuidar_clinic = clinic
    return clinic


def clinic_switch(request: HttpRequest, clinic_id: int | str):
    """Remember the clinic chosen in the switcher. Raises ``PermissionError`` if the user
    is not a member of it."""
    if clinic_id == ALL_CLINICS and request.user.is_superuser:
        request.session[SESSION_KEY] = ALL_CLINICS
        request._cuidar_clinic = None
        return None
    try:
        wanted = int(clinic_id)
    except (TypeError, ValueError):
        raise PermissionError(clinic_id) from None
    clinic = next((c for c in available_clinics(request) if c.pk == wanted), None)
    if clinic is None:
        raise PermissionError(clinic_id)
    request.session[SESSION_KEY] = clinic.pk
    request._cuidar_clinic = clinic
    return clinic
