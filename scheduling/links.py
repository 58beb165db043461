"""Signed one-click links sent in reminders (WhatsApp, SMS, e-mail) and the small public
pages they open: confirm, cancel or reschedule an appointment, and claim a waitlist offer.

No sign-in: the token in the URL is the only key.

- An appointment link carries ``{"a": appointment id, "c": channel}`` signed with the
  ``SECRET_KEY`` and a salt per action, so a confirm token cannot cancel. It is valid for
  ``LINK_MAX_AGE`` at most, and never once the appointment has started. A waitlist offer
  link uses the offer's own random ``token`` (the offer has its own expiry and status).
- GET never changes anything: WhatsApp and e-mail link previews, and security scanners,
  fetch every link; acting on GET would confirm or cancel appointments nobody clicked. A
  GET shows the appointment and one button that POSTs (CSRF-protected: the page sets the
  cookie, no sign-in needed). The POST acts through ``services`` with ``via`` the channel
  the link was sent by.
- The pages show the patient's first name, the time (in the clinic's time zone), the
  professional, the service and the clinic — never a full name, a CPF or a note. A bad
  link and an unknown appointment look the same (404); an expired one (410) names only the
  clinic, so the patient knows whom to call.
- Responses are ``no-store``, ``noindex`` and ``no-referrer``: the URL is a secret. Like
  every public page they carry the portal's Content-Security-Policy
  (``config.security_headers``), so the pages' stylesheet is a static file, never inline.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
import zlib
from collections.abc import Callable
from contextlib import nullcontext
from datetime import date, datetime, timedelta
from functools import wraps
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from django.conf import settings
from django.core import signing
from django.http import HttpRequest, HttpResponse
from django.middleware.csrf import CsrfViewMiddleware
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.utils.decorators import decorator_from_middleware
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from clinic.kernel.timezones import clinic_zone
from clinic.models import Clinic, Room
from clinic.validators import phone_format

from . import services
from .availability import Slot, slot_list_available
from .choices import AppointmentStatus, Channel, OfferStatus
from .exceptions import (
    CancellationWindowClosed,
    InvalidTransition,
    OfferUnavailable,
    SchedulingError,
    SlotUnavailable,
)
from .models import Appointment, WaitlistOffer

S = AppointmentStatus

LINK_ACTIONS = ("confirm", "cancel", "reschedule")
#: The longest a link works; it stops earlier when the appointment starts.
LINK_MAX_AGE = timedelta(days=14)
#: How far ahead, and how many, free times the reschedule page offers.
RESCHEDULE_HORIZON = timedelta(days=14)
RESCHEDULE_MAX_SLOTS = 12
RESCHEDULE_SLOTS_PER_DAY = 4
#: Recorded on the appointment (internal, not shown to the patient): not translated.
CANCEL_REASON = "cancelled by the patient through a link"
#: Channels an offer link may say it came by (``?c=``); anything else counts as the portal.
OFFER_CHANNELS = frozenset({Channel.WHATSAPP, Channel.SMS, Channel.EMAIL, Channel.PORTAL})
#: The statuses each action applies to.
ACTIONABLE = {
    "confirm": frozenset({S.SCHEDULED}),
    "cancel": frozenset({S.SCHEDULED, S.CONFIRMED}),
    "reschedule": frozenset({S.SCHEDULED, S.CONFIRMED}),
}
TEMPLATES = "scheduling/links/"

csrf_logger = logging.getLogger("django.security.csrf")


# --- Errors ---------------------------------------------------------------------------------
class LinkError(SchedulingError):
    """A link that cannot be used. ``clinic`` is set when it is known (the patient should
    call it), and only then."""

    def __init__(self, message=None, *, clinic: Clinic | None = None):
        super().__init__(message or self.default_message)
        self.clinic = clinic


class LinkInvalid(LinkError):
    """Tampered, truncated, made for another action, or its appointment is gone."""

    status_code = 404
    code = "link_invalid"
    default_message = gettext_lazy("This link is not valid.")


class LinkExpired(LinkError):
    """Older than ``LINK_MAX_AGE``, or the appointment has started."""

    status_code = 410
    code = "link_expired"
    default_message = gettext_lazy("This link has expired.")


# --- Links ----------------------------------------------------------------------------------
def _salt(action: str) -> str:
    return f"cuidar.appointment-link.{action}"


def appointment_link(*, appointment: Appointment, action: str, channel: str) -> str:
    """The absolute URL that lets the patient ``action`` (one of ``LINK_ACTIONS``) this
    appointment; ``channel`` (a ``Channel``) is recorded as how they did it."""
    if action not in LINK_ACTIONS:
        raise ValueError(f"unknown link action: {action!r}")
    if channel not in Channel.values:
        raise ValueError(f"unknown channel: {channel!r}")
    token = signing.dumps(
        {"a": appointment.pk, "c": str(channel)}, salt=_salt(action), compress=True
    )
    path = reverse("scheduling:appointment_link", args=[action, token])
    return settings.CUIDAR_PUBLIC_URL + path


class AppointmentLinks:
    """:func:`appointment_link` for many appointments (a reminder batch): the same URLs,
    made without redoing per link what is the same for all — the signer, the key derived
    for each action's salt, the path around the token and the timestamp (the batch's
    second). Exactly what ``signing.dumps(..., compress=True)`` produces (the claims are
    too short for zlib to shorten), so :func:`appointment_from_link` reads them."""

    def __init__(self):
        secret = settings.SECRET_KEY.encode()
        self._keys = {
            action: hashlib.sha256(f"{_salt(action)}signer".encode() + secret).digest()
            for action in LINK_ACTIONS
        }
        self._around_token = {
            action: (settings.CUIDAR_PUBLIC_URL + path).rsplit("TOKEN", 1)
            for action in LINK_ACTIONS
            for path in [reverse("scheduling:appointment_link", args=[action, "TOKEN"])]
        }
        self._timestamp = signing.b62_encode(int(time.time()))
        self._channels = frozenset(Channel.values)

    def __call__(self, *, appointment_id: int, channel: str) -> dict[str, str]:
        """Every action's link (``LINK_ACTIONS``) of one appointment: action → URL."""
        if channel not in self._channels:
            raise ValueError(f"unknown channel: {channel!r}")
        data = json.dumps({"a": appointment_id, "c": str(channel)}, separators=(",", ":"))
        if len(zlib.compress(data.encode())) < len(data) - 1:  # never for these claims
            return {
                action: appointment_link(
                    appointment=Appointment(pk=appointment_id), action=action, channel=channel
                )
                for action in LINK_ACTIONS
            }
        value = f"{signing.b64_encode(data.encode()).decode()}:{self._timestamp}"
        links = {}
        for action, key in self._keys.items():
            mac = signing.b64_encode(hmac.new(key, value.encode(), hashlib.sha256).digest())
            before, after = self._around_token[action]
            links[action] = f"{before}{value}:{mac.decode()}{after}"
        return links


def offer_link(*, offer: WaitlistOffer, channel: str) -> str:
    """The absolute URL of the page where the patient claims a waitlist offer."""
    path = reverse("scheduling:offer_claim", args=[offer.token])
    return f"{settings.CUIDAR_PUBLIC_URL}{path}?{urlencode({'c': str(channel)})}"


def appointment_from_link(
    *, action: str, token: str, now: datetime | None = None
) -> tuple[Appointment, str]:
    """The appointment and channel of a link, with its clinic, patient, professional and
    service. Raises ``LinkInvalid`` (bad signature, another action's token, unknown
    appointment or inactive clinic) or ``LinkExpired`` (too old, or the appointment has
    started)."""
    if action not in LINK_ACTIONS:
        raise LinkInvalid()
    try:
        data = signing.loads(token, salt=_salt(action), max_age=LINK_MAX_AGE)
    except signing.SignatureExpired:
        raise LinkExpired(clinic=_clinic_of_expired(action, token)) from None
    except signing.BadSignature:
        raise LinkInvalid() from None
    pk, channel = _claims(data)
    appointment = _appointments().filter(pk=pk).first()
    if appointment is None:
        raise LinkInvalid()
    if appointment.start <= (now or timezone.now()):
        raise LinkExpired(clinic=appointment.clinic)
    return appointment, channel


def _claims(data) -> tuple[int, str]:
    if not isinstance(data, dict):
        raise LinkInvalid()
    pk, channel = data.get("a"), data.get("c")
    if not isinstance(pk, int) or channel not in Channel.values:
        raise LinkInvalid()
    return pk, channel


def _appointments():
    return Appointment.objects.select_related(
        "clinic", "patient", "professional", "service", "room"
    ).filter(clinic__is_active=True)


def _clinic_of_expired(action: str, token: str) -> Clinic | None:
    """The clinic of a link that was genuine but is too old: the page says whom to call.
    (The signature was checked; only its age failed.)"""
    try:
        pk, _channel = _claims(signing.loads(token, salt=_salt(action)))
    except (signing.BadSignature, LinkInvalid):
        return None
    return Clinic.objects.filter(appointments__pk=pk, is_active=True).first()


# --- Rendering ------------------------------------------------------------------------------
class _LinkCsrfMiddleware(CsrfViewMiddleware):
    """Django's CSRF check, but a refusal shows a page a patient understands instead of
    ``CSRF_FAILURE_VIEW`` (Django's technical 403, meant for developers)."""

    def _reject(self, request, reason):
        # Logged as Django does, without the path: it holds the token.
        csrf_logger.warning("Forbidden (%s): a patient link page", reason)
        return _render(request, "csrf_failed.html", status=403)


_csrf_protect = decorator_from_middleware(_LinkCsrfMiddleware)


def _public_page(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """GET shows, POST acts (CSRF-checked); every response stays out of caches, search
    engines and referrers (the token is in the URL)."""
    guarded = _csrf_protect(require_http_methods(["GET", "HEAD", "POST"])(view))

    @csrf_exempt  # the global CSRF middleware steps aside: ``guarded`` makes the same check
    @wraps(view)
    def wrapper(request, *args, **kwargs):
        return _private_headers(guarded(request, *args, **kwargs))

    return wrapper


def _private_headers(response: HttpResponse) -> HttpResponse:
    response["Cache-Control"] = "private, no-store"
    response["X-Robots-Tag"] = "noindex, nofollow"
    response["Referrer-Policy"] = "no-referrer"
    return response


def _render(
    request: HttpRequest,
    template: str,
    context: dict | None = None,
    *,
    clinic: Clinic | None = None,
    status: int = 200,
) -> HttpResponse:
    """Render a links page with the clinic's name and phone, times in its time zone."""
    zone = timezone.override(clinic_zone(clinic)) if clinic else nullcontext()
    context = {
        "clinic": clinic,
        "clinic_phone": phone_format(clinic.phone) if clinic and clinic.phone else "",
        **(context or {}),
    }
    with zone:
        response = render(request, TEMPLATES + template, context, status=status)
    return _private_headers(response)


def _link_error(request: HttpRequest, error: LinkError) -> HttpResponse:
    template = "expired.html" if isinstance(error, LinkExpired) else "invalid.html"
    return _render(request, template, clinic=error.clinic, status=error.status_code)


def _appointment_page(
    request: HttpRequest, template: str, appointment: Appointment, *, status: int = 200, **extra
) -> HttpResponse:
    return _render(
        request,
        template,
        {"appointment": appointment, **extra},
        clinic=appointment.clinic,
        status=status,
    )


def _unavailable(
    request: HttpRequest, appointment: Appointment, message: str, *, status: int = 409
) -> HttpResponse:
    return _appointment_page(
        request, "unavailable.html", appointment, status=status, message=message
    )


def _state_page(request: HttpRequest, appointment: Appointment, action: str) -> HttpResponse:
    """The appointment is not in a status ``action`` applies to: say why, kindly. Doing
    again what is already done is not an error (a second tap, a reload after POST)."""
    status = appointment.status
    if action == "confirm" and status == S.CONFIRMED:
        return _appointment_page(request, "confirmed.html", appointment, already=True)
    if action == "cancel" and status == S.CANCELLED:
        return _appointment_page(request, "cancelled.html", appointment, already=True)
    if status == S.CANCELLED:
        message = _("This appointment was cancelled.")
    elif status == S.RESCHEDULED:
        message = _(
            "This appointment was moved to another time. "
            "Please use the most recent message from the clinic."
        )
    else:
        message = _("This appointment can no longer be changed online. Please contact the clinic.")
    return _unavailable(request, appointment, message)


# --- Appointment links ----------------------------------------------------------------------
@_public_page
def appointment_link_page(request: HttpRequest, action: str, token: str) -> HttpResponse:
    """``/agenda/l/<action>/<token>/``: GET shows the appointment and one button; POST
    confirms, cancels or reschedules it through the services."""
    try:
        appointment, channel = appointment_from_link(action=action, token=token)
    except LinkError as error:
        return _link_error(request, error)
    if appointment.status not in ACTIONABLE[action]:
        return _state_page(request, appointment, action)
    handler = {"confirm": _confirm, "cancel": _cancel, "reschedule": _reschedule}[action]
    return handler(request, appointment, channel)


def _confirm(request: HttpRequest, appointment: Appointment, channel: str) -> HttpResponse:
    if request.method != "POST":
        return _appointment_page(request, "confirm.html", appointment)
    try:
        services.appointment_confirm(appointment=appointment, via=channel)
    except InvalidTransition:  # changed since it was read (a double tap, the reception)
        appointment.refresh_from_db(fields=["status"])
        return _state_page(request, appointment, "confirm")
    return _appointment_page(request, "confirmed.html", appointment)


def _window_message(appointment: Appointment, action: str) -> str:
    hours = appointment.service.cancellation_window_hours
    if action == "cancel":  # the same words as services.appointment_cancel
        return _(
            "Appointments can only be cancelled online up to %(hours)d hours before. "
            "Please call the clinic."
        ) % {"hours": hours}
    return _(
        "Appointments can only be rescheduled online up to %(hours)d hours before. "
        "Please call the clinic."
    ) % {"hours": hours}


def _cancel(request: HttpRequest, appointment: Appointment, channel: str) -> HttpResponse:
    if request.method != "POST":
        if services.is_late_cancellation(appointment):
            return _unavailable(request, appointment, _window_message(appointment, "cancel"))
        return _appointment_page(request, "cancel.html", appointment)
    try:
        services.appointment_cancel(
            appointment=appointment, via=channel, reason=CANCEL_REASON, enforce_window=True
        )
    except CancellationWindowClosed as error:
        return _unavailable(request, appointment, str(error.message))
    except InvalidTransition:
        appointment.refresh_from_db(fields=["status"])
        return _state_page(request, appointment, "cancel")
    return _appointment_page(request, "cancelled.html", appointment)


def _reschedule(request: HttpRequest, appointment: Appointment, channel: str) -> HttpResponse:
    if services.is_late_cancellation(appointment):
        return _unavailable(request, appointment, _window_message(appointment, "reschedule"))
    if not appointment.service.online_bookable:
        return _unavailable(
            request,
            appointment,
            _("This appointment cannot be rescheduled online. Please call the clinic."),
        )
    slots = _free_slots(appointment)  # all of them: a POST may pick any time still free
    if request.method != "POST":
        return _slot_page(request, appointment, slots)

    posted = request.POST.get("start", "")
    if not posted:
        return _slot_page(request, appointment, slots, error=_("Choose a time."), status=400)
    if posted not in _offered(appointment, request.POST.get("offered", "")):
        return _slot_page(
            request, appointment, slots, error=_("Choose one of the times listed."), status=400
        )
    slot = next((s for s in slots if s.start.isoformat() == posted), None)
    if slot is None:  # offered on the page, booked by someone else since
        return _slot_page(request, appointment, slots, error=_taken_message(), status=409)
    room = Room.objects.filter(pk=slot.room_id).first() if slot.room_id else None
    try:
        new = services.appointment_reschedule(
            appointment=appointment, start=slot.start, room=room, via=channel
        )
    except SlotUnavailable as error:
        # Rolled back: reload the old appointment (the service set its status in memory).
        appointment.refresh_from_db(fields=["status", "updated_at"])
        if error.conflicts == ["patient"]:
            message = _("You already have another appointment at that time. Choose another.")
        else:
            message = _taken_message()
        slots = _free_slots(appointment)
        return _slot_page(request, appointment, slots, error=message, status=409)
    except InvalidTransition:
        appointment.refresh_from_db(fields=["status"])
        return _state_page(request, appointment, "reschedule")
    return _appointment_page(request, "rescheduled.html", new, previous=appointment)


def _taken_message() -> str:
    return _("That time was just taken. Please choose another.")


def _free_slots(appointment: Appointment) -> list[Slot]:
    """Every free time of the same service with the same professional in the next
    ``RESCHEDULE_HORIZON`` (one per start; the appointment's own time excluded)."""
    now = timezone.now()
    slots: list[Slot] = []
    seen = {appointment.start}
    for slot in slot_list_available(
        clinic=appointment.clinic,
        service=appointment.service,
        professional=appointment.professional,
        start=now,
        end=now + RESCHEDULE_HORIZON,
        now=now,
    ):
        if slot.start not in seen:
            seen.add(slot.start)
            slots.append(slot)
    return slots


def _days_to_offer(slots: list[Slot], zone: ZoneInfo) -> list[tuple[date, list[Slot]]]:
    """At most ``RESCHEDULE_MAX_SLOTS`` times, grouped by local day: up to
    ``RESCHEDULE_SLOTS_PER_DAY`` a day, spread over the day's free times, so that a phone
    screen shows several days and not one morning in 15-minute steps."""
    by_day: dict[date, list[Slot]] = {}
    for slot in slots:
        by_day.setdefault(slot.start.astimezone(zone).date(), []).append(slot)
    days, left = [], RESCHEDULE_MAX_SLOTS
    for day, free in by_day.items():
        if left <= 0:
            break
        k = min(RESCHEDULE_SLOTS_PER_DAY, left, len(free))
        # k indices evenly spread from the first to the last free time of the day.
        picked = sorted({round(i * (len(free) - 1) / max(k - 1, 1)) for i in range(k)})
        days.append((day, [free[i] for i in picked]))
        left -= len(picked)
    return days


# The page signs the times it offered, so a POST can tell "not one of ours" (400) from
# "ours, but taken since" (409); availability itself is checked again on POST.
def _offered_salt(appointment: Appointment) -> str:
    return f"cuidar.appointment-link.offered.{appointment.pk}"


def _sign_offered(appointment: Appointment, slots: list[Slot]) -> str:
    starts = [slot.start.isoformat() for slot in slots]
    return signing.dumps(starts, salt=_offered_salt(appointment), compress=True)


def _offered(appointment: Appointment, signed: str) -> list[str]:
    try:
        starts = signing.loads(signed, salt=_offered_salt(appointment), max_age=LINK_MAX_AGE)
    except signing.BadSignature:
        return []
    return [s for s in starts if isinstance(s, str)] if isinstance(starts, list) else []


def _slot_page(
    request: HttpRequest,
    appointment: Appointment,
    free: list[Slot],
    *,
    error: str = "",
    status: int = 200,
) -> HttpResponse:
    """A choice of the free times, grouped by the clinic's local day, as radio buttons."""
    days = _days_to_offer(free, clinic_zone(appointment.clinic))
    shown = [slot for _day, day_slots in days for slot in day_slots]
    return _appointment_page(
        request,
        "reschedule.html",
        appointment,
        status=status,
        days=[
            (day, [{"start": s.start, "value": s.start.isoformat()} for s in day_slots])
            for day, day_slots in days
        ],
        offered=_sign_offered(appointment, shown),
        error=error,
    )


# --- Waitlist offers ------------------------------------------------------------------------
def _offer_unavailable(offer: WaitlistOffer, now: datetime) -> tuple[str, int] | None:
    """Why an offer cannot be claimed, as (message, status), or None if it can. The
    messages are those of ``services.waitlist_offer_claim``."""
    if offer.status == OfferStatus.CLAIMED:
        return _("This offer was already used."), 410
    if offer.status == OfferStatus.TAKEN:
        return _("Sorry, this slot was already taken by someone else."), 409
    if offer.status == OfferStatus.EXPIRED or offer.expires_at <= now or offer.start <= now:
        return _("This offer has expired."), 410
    return None


def _offer_channel(request: HttpRequest) -> str:
    # Unsigned on purpose: it only says how the patient came, and defaults to the portal.
    channel = request.POST.get("c") or request.GET.get("c") or ""
    return channel if channel in OFFER_CHANNELS else Channel.PORTAL


@_public_page
def offer_claim_page(request: HttpRequest, token: str) -> HttpResponse:
    """``/agenda/offer/<token>/``: GET shows the offered time and until when it is held;
    POST claims it (the first claim books; the others are told it is gone)."""
    offer = (
        WaitlistOffer.objects.select_related(
            "clinic", "professional", "entry__patient", "entry__service"
        )
        .filter(token=token, clinic__is_active=True)
        .first()
    )
    if offer is None:
        return _render(request, "invalid.html", status=404)

    def page(template: str, *, status: int = 200, **extra) -> HttpResponse:
        context = {"offer": offer, "patient": offer.entry.patient, "service": offer.entry.service}
        return _render(request, template, {**context, **extra}, clinic=offer.clinic, status=status)

    unavailable = _offer_unavailable(offer, timezone.now())
    if unavailable is not None:
        message, status = unavailable
        return page("unavailable.html", message=message, status=status)
    channel = _offer_channel(request)
    if request.method != "POST":
        return page("offer.html", channel=channel)
    try:
        appointment = services.waitlist_offer_claim(token=offer.token, via=channel)
    except OfferUnavailable as error:
        offer.refresh_from_db(fields=["status", "expires_at"])
        _message, status = _offer_unavailable(offer, timezone.now()) or ("", 409)
        return page("unavailable.html", message=str(error.message), status=status)
    return page("offer_claimed.html", appointment=appointment)
