"""The receptionist's agenda, computed: the appointments of a day or week (one query, the
"first visit" flag annotated), the status changes offered as buttons, the bookable times and
the time grid the day and week pages draw. The pages themselves are
``scheduling/admin/agenda.py``.

Queries are fixed per page, whatever the number of appointments: professionals, rooms,
working hours, time off, closures and the appointments (with their patient, service,
professional and room joined and the "first visit" flag annotated) are one query each.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from django.db.models import Exists, OuterRef
from django.utils import formats, timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from clinic.kernel.timezones import clinic_zone as kernel_clinic_zone

from . import conf, services
from .availability import Slot
from .choices import OCCUPYING_STATUSES, TRANSITIONS, AppointmentStatus
from .models import Appointment

S = AppointmentStatus
DEFAULT_DAY = (8 * 60, 18 * 60)  # rows shown when nobody works and nothing is booked
RESCHEDULE_DAYS = 14
# Shown in the grid; cancelled and rescheduled ones are listed under it, so that their
# time shows as free (and bookable) again.
GRID_STATUSES = (*OCCUPYING_STATUSES, S.NO_SHOW)


#: A working row where nothing can start (why it is not "free").
NOT_BOOKABLE = gettext_lazy(
    "Not bookable: no service fits here (buffers, a gap too short, or the past)"
)


# --- Time zone ------------------------------------------------------------------------------
def clinic_zone(clinic) -> ZoneInfo:
    """The clinic's time zone (the site's default for a superuser viewing all clinics)."""
    if clinic is None:
        return timezone.get_default_timezone()
    return kernel_clinic_zone(clinic)


def local_label(appointment: Appointment, zone) -> str:
    """ "Maria Souza — 10/06/2026 14:00": how an appointment is named in messages."""
    start = formats.date_format(appointment.start.astimezone(zone), "SHORT_DATETIME_FORMAT")
    return f"{appointment.patient.display_name} — {start}"


# --- Status changes offered as buttons ------------------------------------------------------
@dataclass(frozen=True)
class StatusAction:
    """A transition the reception performs with one click, and the service that does it."""

    name: str
    target: str
    label: str
    done: str
    perform: Callable[..., Appointment]

    def run(self, appointment: Appointment, *, user, reason: str = "") -> Appointment:
        if self.target == S.CANCELLED:
            return self.perform(appointment=appointment, by=user, reason=reason)
        return self.perform(appointment=appointment, by=user)


STATUS_ACTIONS: dict[str, StatusAction] = {
    a.name: a
    for a in (
        StatusAction(
            "confirm",
            S.CONFIRMED,
            gettext_lazy("Confirm"),
            gettext_lazy("Confirmed"),
            services.appointment_confirm,
        ),
        StatusAction(
            "check_in",
            S.ARRIVED,
            gettext_lazy("Check in"),
            gettext_lazy("Checked in"),
            services.appointment_check_in,
        ),
        StatusAction(
            "start",
            S.IN_PROGRESS,
            gettext_lazy("Start"),
            gettext_lazy("Started"),
            services.appointment_start,
        ),
        StatusAction(
            "complete",
            S.COMPLETED,
            gettext_lazy("Complete"),
            gettext_lazy("Completed"),
            services.appointment_complete,
        ),
        StatusAction(
            "no_show",
            S.NO_SHOW,
            gettext_lazy("No-show"),
            gettext_lazy("Marked as no-show"),
            services.appointment_mark_no_show,
        ),
        StatusAction(
            "cancel",
            S.CANCELLED,
            gettext_lazy("Cancel"),
            gettext_lazy("Cancelled"),
            services.appointment_cancel,
        ),
    )
}


def actions_allowed(appointment: Appointment) -> list[StatusAction]:
    """The buttons the status machine allows for this appointment now."""
    allowed = TRANSITIONS[appointment.status]
    return [a for a in STATUS_ACTIONS.values() if a.target in allowed]


def can_reschedule(appointment: Appointment) -> bool:
    return S.RESCHEDULED in TRANSITIONS[appointment.status]


def appointments_for_agenda(*, clinic, start: datetime, end: datetime):
    """Appointments starting in ``[start, end)``, with everything a card shows in the same
    query: patient, service, professional, room, and whether it is a first visit (the
    patient has no earlier completed appointment)."""
    earlier_visit = Appointment.objects.filter(
        patient=OuterRef("patient"), status=S.COMPLETED, start__lt=OuterRef("start")
    )
    return (
        Appointment.objects.for_clinic(clinic)
        .filter(start__gte=start, start__lt=end)
        .select_related("patient", "service", "professional", "room")
        .annotate(has_earlier_visit=Exists(earlier_visit))
        .order_by("start", "pk")
    )


# --- The time grid --------------------------------------------------------------------------
@dataclass
class AgendaItem:
    """An appointment as a card of the agenda."""

    appointment: Appointment
    start: datetime  # local
    end: datetime  # local
    first_visit: bool
    actions: list[StatusAction]
    reschedule: bool
    change_url: str

    @property
    def unconfirmed(self) -> bool:
        return self.appointment.status == S.SCHEDULED


@dataclass(frozen=True)
class Bookable:
    """A time the agenda offers: a slot of ``slots_for_reception`` (of one or more services
    starting then), in the clinic's local time."""

    start: datetime  # local
    professional_id: int
    room_id: int | None
    service_ids: tuple[int, ...]


def bookables(slots_by_service: dict[int, list[Slot]], zone) -> list[Bookable]:
    """The offered times, one per (start, professional, room), naming every service that
    can start then, sorted by start."""
    found: dict[tuple, list[int]] = {}
    for service_id, slots in slots_by_service.items():
        for slot in slots:
            found.setdefault((slot.start, slot.professional_id, slot.room_id), []).append(
                service_id
            )
    return [
        Bookable(start.astimezone(zone), professional_id, room_id, tuple(sorted(services)))
        for (start, professional_id, room_id), services in sorted(
            found.items(), key=lambda f: (f[0][0], f[0][1], f[0][2] or 0)
        )
    ]


@dataclass
class Cell:
    # "busy" (appointments), "free" (bookable), "full" (working, but nothing fits: buffers,
    # a gap too short, the past), "off" (time off), "closed"
    kind: str
    rowspan: int = 1
    items: list[AgendaItem] = field(default_factory=list)
    start: datetime | None = None  # local
    book_url: str = ""
    note: str = ""
    offered: Bookable | None = None  # what a "free" cell books


@dataclass
class Column:
    """One column of the grid: a professional or a room on a day, or a day of a week."""

    label: str
    day: date
    items: list[AgendaItem]
    # Working intervals in minutes since local midnight, with the room they name (if any).
    open_minutes: list[tuple[int, int, int | None]]
    off_minutes: list[tuple[int, int, str]]  # time off: from, until, reason
    book_params: dict
    # What can be booked in this column, from the same computation booking relies on.
    bookable: list[Bookable] = field(default_factory=list)
    closed: str = ""  # reason the clinic is closed that day
    link: str = ""
    color: str = ""
    sublabel: str = ""
    cells: list[Cell | None] = field(default_factory=list)


@dataclass
class Row:
    label: str
    minute: int
    cells: list[Cell | None]


def _minutes(moment: datetime, day: date, zone) -> int:
    """Minutes from the local midnight of ``day`` (clamped to the day)."""
    local = moment.astimezone(zone)
    midnight = datetime.combine(day, time.min, tzinfo=zone)
    return max(0, min(24 * 60, int((local - midnight).total_seconds() // 60)))


def _bounds(columns: list[Column], zone, step: int) -> tuple[int, int]:
    starts, ends = [], []
    for column in columns:
        for lo, hi, _room in column.open_minutes:
            starts.append(lo)
            ends.append(hi)
        for item in column.items:
            starts.append(_minutes(item.start, column.day, zone))
            ends.append(max(_minutes(item.end, column.day, zone), starts[-1] + step))
    first, last = (min(starts), max(ends)) if starts else DEFAULT_DAY
    first = first // step * step
    last = min(24 * 60, -(-last // step) * step)
    return first, max(last, first + step)


def grid_build(*, columns: list[Column], zone, step: int, add_url: str) -> list[Row]:
    """Lay the columns out in rows of ``step`` minutes, from the earliest working hour (or
    appointment) to the latest. Appointments that overlap in a column share one cell (a
    no-show and the patient booked in its place); a cell spans the rows it covers."""
    first, last = _bounds(columns, zone, step)
    count = (last - first) // step
    for column in columns:
        cells: list[Cell | None] = [None] * count
        groups: list[list] = []  # [first row, end row, items]
        for item in column.items:
            lo = (_minutes(item.start, column.day, zone) - first) // step
            hi = -(-(_minutes(item.end, column.day, zone) - first) // step)
            lo, hi = max(0, min(lo, count - 1)), max(lo + 1, min(hi, count))
            if groups and lo < groups[-1][1]:
                groups[-1][1] = max(groups[-1][1], hi)
                groups[-1][2].append(item)
            else:
                groups.append([lo, hi, [item]])
        covered = set()
        for lo, hi, items in groups:
            cells[lo] = Cell("busy", rowspan=hi - lo, items=items)
            covered.update(range(lo + 1, hi))
        midnight = datetime.combine(column.day, time.min, tzinfo=zone)

        def row_end(row_start: datetime) -> datetime:
            return row_start + timedelta(minutes=step)

        for index in range(count):
            if cells[index] is not None or index in covered:
                continue
            minute = first + index * step
            start = midnight + timedelta(minutes=minute)
            off = next(
                (r for lo, hi, r in column.off_minutes if lo < minute + step and minute < hi),
                None,
            )
            # The first time offered inside this row (the grid of the slots may not be the
            # grid of the rows: intervals starting at 08:10, rows of 15 minutes).
            offered = next((b for b in column.bookable if start <= b.start < row_end(start)), None)
            if column.closed:
                cells[index] = Cell("closed", start=start, note=column.closed)
            elif offered is not None:
                cells[index] = Cell(
                    "free",
                    start=offered.start,
                    book_url=book_url(add_url, column.book_params, offered),
                    note=column.label,
                    offered=offered,
                )
            elif off is not None:
                cells[index] = Cell("off", start=start, note=off or _("Time off"))
            elif any(i[0] <= minute < i[1] for i in column.open_minutes):
                cells[index] = Cell("full", start=start, note=NOT_BOOKABLE)
            else:
                cells[index] = Cell("closed", start=start)
        column.cells = cells
    rows = []
    for index in range(count):
        minute = first + index * step
        rows.append(
            Row(
                label=f"{minute // 60:02d}:{minute % 60:02d}",
                minute=minute,
                cells=[c.cells[index] for c in columns],
            )
        )
    return rows


def book_url(add_url: str, params: dict, offered: Bookable) -> str:
    """The add form prefilled with the offered time, its professional, its room and, when
    only one service fits there, that service."""
    params = {
        **params,
        "professional": offered.professional_id,
        "start": offered.start.strftime("%Y-%m-%dT%H:%M"),
    }
    if offered.room_id is not None:
        params["room"] = offered.room_id
    if len(offered.service_ids) == 1:
        params["service"] = offered.service_ids[0]
    return f"{add_url}?{urlencode(params)}"


def slot_step(clinic) -> int:
    # The clinic's availability grid, kept between 10 and 60 minutes so the page stays
    # readable on a tablet.
    return max(10, min(60, int(conf.clinic_option(clinic, "slot_step_minutes"))))


def hours_minutes(hours) -> list[tuple[int, int, int | None]]:
    return [
        (
            h.start_time.hour * 60 + h.start_time.minute,
            h.end_time.hour * 60 + h.end_time.minute,
            h.room_id,
        )
        for h in hours
    ]


def off_minutes(time_off, day: date, zone) -> list[tuple[int, int, str]]:
    midnight = datetime.combine(day, time.min, tzinfo=zone)
    next_midnight = midnight + timedelta(days=1)
    return [
        (_minutes(t.start, day, zone), _minutes(t.end, day, zone), t.reason)
        for t in time_off
        if t.start < next_midnight and t.end > midnight
    ]


def closure_on(closures, day: date) -> str:
    return next((c.reason for c in closures if c.start_date <= day <= c.end_date), "")
