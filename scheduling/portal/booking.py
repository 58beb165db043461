"""Booking on the portal: service → professional (or any) → day → time → confirm."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from django.contrib import messages
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext
from django.views.decorators.http import require_http_methods

from clinic.kernel.timezones import clinic_zone
from clinic.models import Clinic, Professional, Room
from clinic.portal.sessions import portal_view

from .. import selectors, services
from ..availability import Slot
from ..choices import Channel
from ..exceptions import SlotUnavailable
from ..models import Appointment, Service
from .common import (
    BOOK_DAYS_WINDOW,
    TEMPLATES,
    _detail_url,
    clinic_context,
)

# --- Booking --------------------------------------------------------------------------------
STEPS = ("service", "professional", "day", "slot", "confirm")
STEP_NAMES = {
    "service": gettext_lazy("Service"),
    "professional": gettext_lazy("Professional"),
    "day": gettext_lazy("Day"),
    "slot": gettext_lazy("Time"),
    "confirm": gettext_lazy("Confirm"),
}
ANY = "any"


@dataclass
class Choice:
    """What the patient chose so far, read from the query string (or the final POST)."""

    step: str = "service"
    service: Service | None = None
    professional: Professional | None = None
    any_professional: bool = False
    day: date | None = None
    start: datetime | None = None
    #: Input that was not one of the choices offered (the page says so, status 400).
    error: str = ""
    params: dict = field(default_factory=dict)

    def query(self, upto: str, **extra) -> str:
        """The query string of the choices made before step ``upto``, plus ``extra``."""
        keep = {"professional": ["service"], "day": ["service", "professional"]}
        keep["slot"] = [*keep["day"], "day"]
        keep["confirm"] = [*keep["slot"], "start"]
        values = {k: self.params[k] for k in keep.get(upto, []) if k in self.params}
        values.update({k: v for k, v in extra.items() if v not in (None, "")})
        return "?" + urlencode(values) if values else "?"


def bookable_services(clinic: Clinic):
    """Services a patient may book online: active, bookable online, with someone active to
    perform them."""
    return (
        Service.objects.for_clinic(clinic)
        .filter(is_active=True, online_bookable=True, professionals__is_active=True)
        .distinct()
        .order_by("name", "pk")
    )


def _int(value) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _read_choice(clinic: Clinic, data, zone: ZoneInfo) -> Choice:
    """Walk the steps in order: the first one without a (valid) answer is the current one."""
    choice = Choice()
    raw = {k: (data.get(k) or "").strip()[:64] for k in ("service", "professional", "day", "start")}
    if not raw["service"]:
        return choice
    service_id = _int(raw["service"])
    choice.service = bookable_services(clinic).filter(pk=service_id).first() if service_id else None
    if choice.service is None:
        choice.error = _("Choose one of the services listed.")
        return choice
    choice.params["service"] = choice.service.pk
    choice.step = "professional"
    if not raw["professional"]:
        return choice
    if raw["professional"] == ANY:
        choice.any_professional = True
    else:
        professional_id = _int(raw["professional"])
        choice.professional = (
            choice.service.professionals.filter(
                clinic=clinic, is_active=True, pk=professional_id
            ).first()
            if professional_id
            else None
        )
        if choice.professional is None:
            choice.error = _("Choose one of the professionals listed.")
            return choice
    choice.params["professional"] = ANY if choice.any_professional else choice.professional.pk
    choice.step = "day"
    # Dates far outside what could ever be offered are not choices (and would overflow the
    # date arithmetic below); nearer ones are explained by the service's rules.
    today = timezone.now().astimezone(zone).date()
    earliest = today - timedelta(days=366)
    latest = today + timedelta(days=choice.service.max_advance_days + 366)
    if raw["start"]:
        try:
            start = datetime.fromisoformat(raw["start"])
            day = start.astimezone(zone).date() if start.tzinfo is not None else None
        except (ValueError, OverflowError):
            day = None
        if day is None or not earliest <= day <= latest:
            choice.error = _("Choose one of the times listed.")
        else:
            choice.start, choice.day = start, day
            choice.params["day"] = day.isoformat()
            choice.params["start"] = start.isoformat()
            choice.step = "confirm"
            return choice
    if raw["day"]:
        try:
            day = date.fromisoformat(raw["day"])
        except ValueError:
            day = None
        if day is None or not earliest <= day <= latest:
            choice.error = choice.error or _("Choose one of the days listed.")
            return choice
        choice.day = day
        choice.params["day"] = day.isoformat()
        choice.step = "slot"
    return choice


def _midnight(day: date, zone: ZoneInfo) -> datetime:
    return datetime.combine(day, datetime.min.time(), tzinfo=zone)


def _free_slots(clinic: Clinic, choice: Choice, start: datetime, end: datetime) -> list[Slot]:
    """Free times of the chosen service (and professional), one per start: with "any
    professional" the first one free at that time (the engine sorts by start, then
    professional)."""
    slots, seen = [], set()
    for slot in selectors.slot_list_available(
        clinic=clinic,
        service=choice.service,
        professional=choice.professional,
        start=start,
        end=end,
    ):
        if slot.start not in seen:
            seen.add(slot.start)
            slots.append(slot)
    return slots


def booking_rules(service: Service) -> str:
    """The notice and advance rules of a service, in a sentence."""
    minutes = service.min_notice_minutes
    days = service.max_advance_days
    ahead = ngettext("up to %(days)d day ahead", "up to %(days)d days ahead", days) % {"days": days}
    if not minutes:
        return _("Online booking: %(ahead)s.") % {"ahead": ahead}
    if minutes % 60 == 0:
        notice = ngettext("%(n)d hour", "%(n)d hours", minutes // 60) % {"n": minutes // 60}
    else:
        notice = ngettext("%(n)d minute", "%(n)d minutes", minutes) % {"n": minutes}
    return _("Online booking: at least %(notice)s in advance and %(ahead)s.") % {
        "notice": notice,
        "ahead": ahead,
    }


def _taken_message() -> str:
    return _("That time has just been taken. Please choose another time.")


def _why_not(service: Service, start: datetime, now: datetime) -> tuple[str, int]:
    """Why ``start`` cannot be booked (message, status): outside the service's rules (400)
    or taken (409)."""
    if start < now + timedelta(minutes=service.min_notice_minutes) or start > now + timedelta(
        days=service.max_advance_days
    ):
        return (
            _("That time cannot be booked online. %(rules)s") % {"rules": booking_rules(service)},
            400,
        )
    return _taken_message(), 409


def _book_page(
    request: HttpRequest, choice: Choice, *, error: str = "", status: int = 200
) -> HttpResponse:
    """Render the current step of ``choice``."""
    portal = request.portal
    clinic = portal.clinic
    zone = clinic_zone(clinic)
    error = error or choice.error
    if error and status == 200:
        status = 400
    steps = []
    current = STEPS.index(choice.step)
    for index, key in enumerate(STEPS):
        steps.append(
            {
                "name": STEP_NAMES[key],
                "current": index == current,
                # Earlier steps are links back to them (the later choices are dropped).
                "url": choice.query(key) if index < current else "",
            }
        )
    context = {
        "nav": "book",
        "choice": choice,
        "steps": steps,
        "error": error,
        "any": ANY,
    }
    if choice.step == "service":
        context["options"] = [
            {
                "label": service.name,
                "hint": ngettext("%(n)d minute", "%(n)d minutes", service.duration_minutes)
                % {"n": service.duration_minutes},
                "url": choice.query("professional", service=service.pk),
            }
            for service in bookable_services(clinic)
        ]
    elif choice.step == "professional":
        professionals = choice.service.professionals.filter(clinic=clinic, is_active=True)
        context["options"] = [
            {
                "label": _("Any professional"),
                "hint": _("The first one free at the time you choose."),
                "url": choice.query("day", professional=ANY),
            },
            *(
                {
                    "label": professional.full_name,
                    "hint": professional.specialty,
                    "url": choice.query("day", professional=professional.pk),
                }
                for professional in professionals.order_by("full_name", "pk")
            ),
        ]
    elif choice.step == "day":
        context.update(_day_step(request, choice, zone))
    elif choice.step == "slot":
        start = _midnight(choice.day, zone)
        end = _midnight(choice.day + timedelta(days=1), zone)
        context["slots"] = _free_slots(clinic, choice, start, end)
        context["hidden"] = _hidden(choice, "service", "professional", "day")
        context["back_url"] = choice.query("day")
    elif choice.step == "confirm":
        context["hidden"] = _hidden(choice, "service", "professional", "start")
        context["back_url"] = choice.query("slot")
        context.update(clinic_context(clinic))
    if choice.service is not None:
        context["rules"] = booking_rules(choice.service)
    return render(request, f"{TEMPLATES}book_{choice.step}.html", context, status=status)


def _hidden(choice: Choice, *names: str) -> list[tuple[str, str]]:
    return [(name, str(choice.params[name])) for name in names if name in choice.params]


def _day_step(request: HttpRequest, choice: Choice, zone: ZoneInfo) -> dict:
    """Days with free times in a window of ``BOOK_DAYS_WINDOW`` days from ``?from=``."""
    now = timezone.now()
    today = now.astimezone(zone).date()
    try:
        first = date.fromisoformat(request.GET.get("from", ""))
    except ValueError:
        first = today
    limit = now + timedelta(days=choice.service.max_advance_days)
    first = min(max(first, today), limit.astimezone(zone).date())
    window_end = _midnight(first + timedelta(days=BOOK_DAYS_WINDOW), zone)
    slots = _free_slots(
        clinic=request.portal.clinic,
        choice=choice,
        start=max(_midnight(first, zone), now),
        end=min(window_end, limit),
    )
    days: dict[date, int] = {}
    for slot in slots:
        day = slot.start.astimezone(zone).date()
        days[day] = days.get(day, 0) + 1
    later = first + timedelta(days=BOOK_DAYS_WINDOW) if window_end < limit else None
    earlier = max(first - timedelta(days=BOOK_DAYS_WINDOW), today) if first > today else None
    return {
        "days": [
            {"day": day, "count": count, "url": choice.query("slot", day=day.isoformat())}
            for day, count in days.items()
        ],
        "window_first": first,
        "window_last": first + timedelta(days=BOOK_DAYS_WINDOW - 1),
        "later_url": choice.query("day", **{"from": later.isoformat()}) if later else "",
        "earlier_url": (
            choice.query("day", **({"from": earlier.isoformat()} if earlier != today else {}))
            if earlier
            else ""
        ),
    }


@portal_view
@require_http_methods(["GET", "POST"])
def book(request: HttpRequest) -> HttpResponse:
    """``/portal/agendar/``: GET shows the current step of the choices in the query string;
    the confirm step's POST books."""
    clinic = request.portal.clinic
    zone = clinic_zone(clinic)
    if request.method != "POST":
        choice = _read_choice(clinic, request.GET, zone)
        if choice.step == "confirm":
            return _confirm_step(request, choice)
        return _book_page(request, choice)

    choice = _read_choice(clinic, request.POST, zone)
    if choice.step != "confirm":
        return _book_page(request, choice, error=choice.error or _("Choose a time."), status=400)
    try:
        appointment = _book(request, choice)
    except _NotBookable as refusal:
        return _back_to_slots(request, choice, refusal.message, refusal.status)
    messages.success(request, _("Your appointment is booked. See you soon!"))
    return HttpResponseRedirect(_detail_url(appointment))


def _back_to_slots(request: HttpRequest, choice: Choice, message: str, status: int):
    choice.step = "slot"
    choice.start = None
    choice.params.pop("start", None)
    return _book_page(request, choice, error=message, status=status)


def _confirm_step(request: HttpRequest, choice: Choice) -> HttpResponse:
    """GET of a chosen time: check it is still free, then show what will be booked."""
    now = timezone.now()
    candidates = [
        s
        for s in _free_slots(
            request.portal.clinic, choice, choice.start, choice.start + timedelta(minutes=1)
        )
        if s.start == choice.start
    ]
    if not candidates:
        message, status = _why_not(choice.service, choice.start, now)
        return _back_to_slots(request, choice, message, status)
    return _book_page(request, choice)


class _NotBookable(Exception):
    def __init__(self, message: str, status: int):
        super().__init__(message)
        self.message = message
        self.status = status


def _book(request: HttpRequest, choice: Choice) -> Appointment:
    """Book the chosen time through ``appointment_book``; with "any professional", the
    first professional free then (and the next one if they were taken meanwhile)."""
    portal = request.portal
    clinic = portal.clinic
    now = timezone.now()
    service = choice.service
    slots = [
        s
        for s in selectors.slot_list_available(
            clinic=clinic,
            service=service,
            professional=choice.professional,
            start=choice.start,
            end=choice.start + timedelta(minutes=1),
            now=now,
        )
        if s.start == choice.start
    ]
    if not slots:
        raise _NotBookable(*_why_not(service, choice.start, now))
    professionals = {
        p.pk: p
        for p in Professional.objects.for_clinic(clinic).filter(
            pk__in={s.professional_id for s in slots}
        )
    }
    rooms = {
        r.pk: r
        for r in Room.objects.for_clinic(clinic).filter(
            pk__in={s.room_id for s in slots if s.room_id}
        )
    }
    tried = set()
    for slot in slots:
        if slot.professional_id in tried or slot.professional_id not in professionals:
            continue
        tried.add(slot.professional_id)
        try:
            return services.appointment_book(
                clinic=clinic,
                patient=portal.patient,
                professional=professionals[slot.professional_id],
                service=service,
                start=slot.start,
                room=rooms.get(slot.room_id),
                booked_via=Channel.PORTAL,
                check_availability=True,
            )
        except SlotUnavailable as error:
            if "patient" in error.conflicts:
                raise _NotBookable(_patient_busy_message(), 409) from None
            if "hours" in error.conflicts and not choice.any_professional:
                raise _NotBookable(*_why_not(service, choice.start, now)) from None
    raise _NotBookable(_taken_message(), 409)


def _patient_busy_message() -> str:
    return _("You already have another appointment at that time. Please choose another time.")
