"""The agenda: services, working hours, time off and closures, appointments, recurring
series, the waitlist and its offers, and professionals' calendar feeds.

All datetimes are stored in UTC and shown in the clinic's time zone. An appointment
occupies its professional, its room (if any) and its patient for ``[occupied_start,
occupied_end)`` — its time plus the service's buffers; on PostgreSQL exclusion constraints
(migration 0002) make two occupying appointments overlapping impossible — for the
professional, except for a deliberate "encaixe" (migration 0004).
"""

import secrets
from datetime import timedelta
from decimal import Decimal

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import F, Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from clinic.kernel.tenancy import ClinicOwned, ClinicQuerySet

from .choices import (
    OCCUPYING_STATUSES,
    AppointmentStatus,
    Channel,
    DayPeriod,
    OfferStatus,
    ServiceCategory,
    WaitlistStatus,
    Weekday,
)


def new_feed_token() -> str:
    return secrets.token_urlsafe(32)


class Service(ClinicOwned):
    """Something the clinic books: how long it takes, what it costs, who and where."""

    name = models.CharField(_("name"), max_length=120)
    category = models.CharField(
        _("category"),
        max_length=20,
        choices=ServiceCategory.choices,
        default=ServiceCategory.CONSULTATION,
    )
    duration_minutes = models.PositiveSmallIntegerField(
        _("duration (minutes)"), validators=[MinValueValidator(5), MaxValueValidator(12 * 60)]
    )
    buffer_before_minutes = models.PositiveSmallIntegerField(
        _("buffer before (minutes)"),
        default=0,
        help_text=_("Time kept free before the appointment (preparing the room)."),
    )
    buffer_after_minutes = models.PositiveSmallIntegerField(
        _("buffer after (minutes)"),
        default=0,
        help_text=_("Time kept free after the appointment (cleaning, notes)."),
    )
    price = models.DecimalField(
        _("price (R$)"),
        max_digits=10,
        decimal_places=2,
        default=Decimal("0.00"),
        validators=[MinValueValidator(Decimal("0.00"))],
    )
    professionals = models.ManyToManyField(
        "clinic.Professional",
        related_name="services",
        verbose_name=_("professionals"),
        help_text=_("Who can perform it."),
    )
    rooms = models.ManyToManyField(
        "clinic.Room",
        blank=True,
        related_name="services",
        verbose_name=_("rooms"),
        help_text=_("Where it can happen. Leave empty if it needs no particular room."),
    )
    preparation_instructions = models.TextField(
        _("preparation instructions"),
        blank=True,
        help_text=_("Sent to the patient with the reminder, e.g. fasting for 8 hours."),
    )
    online_bookable = models.BooleanField(_("bookable online"), default=True)
    min_notice_minutes = models.PositiveIntegerField(
        _("minimum notice (minutes)"),
        default=120,
        help_text=_("How long before the start a slot can still be booked."),
    )
    max_advance_days = models.PositiveSmallIntegerField(
        _("maximum advance (days)"), default=90, help_text=_("How far ahead it can be booked.")
    )
    cancellation_window_hours = models.PositiveSmallIntegerField(
        _("cancellation window (hours)"),
        default=24,
        help_text=_("Within this many hours of the start a patient cannot cancel online."),
    )
    is_active = models.BooleanField(_("active"), default=True)

    class Meta:
        verbose_name = _("service")
        verbose_name_plural = _("services")
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(
                fields=["clinic", "name"],
                name="service_unique_name_per_clinic",
                violation_error_message=_("A service with this name already exists."),
            )
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def duration(self) -> timedelta:
        return timedelta(minutes=self.duration_minutes)

    @property
    def buffer_before(self) -> timedelta:
        return timedelta(minutes=self.buffer_before_minutes)

    @property
    def buffer_after(self) -> timedelta:
        return timedelta(minutes=self.buffer_after_minutes)


class WorkingHours(ClinicOwned):
    """One interval of a professional's weekly hours (several per day are fine), optionally
    tied to a room, optionally valid only between two dates."""

    professional = models.ForeignKey(
        "clinic.Professional",
        on_delete=models.CASCADE,
        related_name="working_hours",
        verbose_name=_("professional"),
    )
    weekday = models.PositiveSmallIntegerField(_("weekday"), choices=Weekday.choices)
    start_time = models.TimeField(_("from"))
    end_time = models.TimeField(_("until"))
    room = models.ForeignKey(
        "clinic.Room",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="working_hours",
        verbose_name=_("room"),
        help_text=_("Where the professional attends in these hours, if always the same room."),
    )
    valid_from = models.DateField(_("valid from"), null=True, blank=True)
    valid_until = models.DateField(_("valid until"), null=True, blank=True)

    class Meta:
        verbose_name = _("working hours")
        verbose_name_plural = _("working hours")
        ordering = ["professional", "weekday", "start_time"]
        constraints = [
            models.CheckConstraint(
                condition=Q(start_time__lt=F("end_time")),
                name="workinghours_start_before_end",
                violation_error_message=_("The interval must end after it starts."),
            ),
            models.CheckConstraint(
                condition=Q(valid_from__isnull=True)
                | Q(valid_until__isnull=True)
                | Q(valid_from__lte=F("valid_until")),
                name="workinghours_valid_range",
                violation_error_message=_("'Valid until' must not be before 'valid from'."),
            ),
        ]
        indexes = [models.Index(fields=["professional", "weekday"], name="workinghours_prof_idx")]

    def __str__(self) -> str:
        return f"{self.get_weekday_display()} {self.start_time:%H:%M}–{self.end_time:%H:%M}"

    def applies_on(self, day) -> bool:
        return (
            day.weekday() == self.weekday
            and (self.valid_from is None or self.valid_from <= day)
            and (self.valid_until is None or day <= self.valid_until)
        )


class TimeOff(ClinicOwned):
    """A professional's or a room's unavailability (vacation, course, maintenance)."""

    professional = models.ForeignKey(
        "clinic.Professional",
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="time_off",
        verbose_name=_("professional"),
    )
    room = models.ForeignKey(
        "clinic.Room",
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="time_off",
        verbose_name=_("room"),
    )
    start = models.DateTimeField(_("from"))
    end = models.DateTimeField(_("until"))
    reason = models.CharField(_("reason"), max_length=200, blank=True)

    class Meta:
        verbose_name = _("time off")
        verbose_name_plural = _("time off")
        ordering = ["-start"]
        constraints = [
            models.CheckConstraint(
                condition=Q(start__lt=F("end")),
                name="timeoff_start_before_end",
                violation_error_message=_("Time off must end after it starts."),
            ),
            models.CheckConstraint(
                condition=Q(professional__isnull=False) | Q(room__isnull=False),
                name="timeoff_professional_or_room",
                violation_error_message=_("Choose a professional or a room."),
            ),
        ]
        indexes = [
            models.Index(fields=["professional", "start"], name="timeoff_prof_idx"),
            models.Index(fields=["room", "start"], name="timeoff_room_idx"),
        ]

    def __str__(self) -> str:
        # In the active time zone: the clinic's for staff (clinic.middleware).
        who = self.professional or self.room
        start, end = timezone.localtime(self.start), timezone.localtime(self.end)
        return f"{who}: {start:%d/%m/%Y %H:%M} – {end:%d/%m/%Y %H:%M}"


class ClinicClosure(ClinicOwned):
    """Whole days the clinic is closed (a local holiday, a collective vacation)."""

    start_date = models.DateField(_("from"))
    end_date = models.DateField(_("until (inclusive)"))
    reason = models.CharField(_("reason"), max_length=200)

    class Meta:
        verbose_name = _("clinic closure")
        verbose_name_plural = _("clinic closures")
        ordering = ["-start_date"]
        constraints = [
            models.CheckConstraint(
                condition=Q(start_date__lte=F("end_date")),
                name="closure_valid_range",
                violation_error_message=_("The closure must end on or after its first day."),
            )
        ]

    def __str__(self) -> str:
        return f"{self.reason} ({self.start_date:%d/%m/%Y} – {self.end_date:%d/%m/%Y})"


class RecurrenceSeries(ClinicOwned):
    """Appointments booked together as a recurring series (weekly or every N weeks)."""

    interval_weeks = models.PositiveSmallIntegerField(_("every N weeks"), default=1)
    occurrences = models.PositiveSmallIntegerField(_("occurrences"), null=True, blank=True)
    until = models.DateField(_("until"), null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("created by"),
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("recurring series")
        verbose_name_plural = _("recurring series")

    def __str__(self) -> str:
        return _("every %(n)d week(s)") % {"n": self.interval_weeks}


class AppointmentQuerySet(ClinicQuerySet):
    """``for_clinic`` (tenancy) plus the agenda's own filters."""

    def occupying(self):
        return self.filter(status__in=OCCUPYING_STATUSES)

    def overlapping(self, start, end):
        """Occupying ``[start, end)`` (buffers included) — back-to-back does not overlap."""
        return self.filter(occupied_start__lt=end, occupied_end__gt=start)


class Appointment(ClinicOwned):
    """A patient's appointment with a professional for a service, maybe in a room.

    Every change goes through ``scheduling/services/``, which checks the status machine
    (``choices.TRANSITIONS``), records who and how, and publishes the event.
    """

    patient = models.ForeignKey(
        "clinic.Patient",
        on_delete=models.PROTECT,
        related_name="appointments",
        verbose_name=_("patient"),
    )
    professional = models.ForeignKey(
        "clinic.Professional",
        on_delete=models.PROTECT,
        related_name="appointments",
        verbose_name=_("professional"),
    )
    service = models.ForeignKey(
        Service, on_delete=models.PROTECT, related_name="appointments", verbose_name=_("service")
    )
    room = models.ForeignKey(
        "clinic.Room",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="appointments",
        verbose_name=_("room"),
    )
    start = models.DateTimeField(_("start"))
    end = models.DateTimeField(_("end"))
    # [start - buffer before, end + buffer after): what the constraints compare.
    occupied_start = models.DateTimeField(_("occupied from"), editable=False)
    occupied_end = models.DateTimeField(_("occupied until"), editable=False)
    status = models.CharField(
        _("status"),
        max_length=20,
        choices=AppointmentStatus.choices,
        default=AppointmentStatus.SCHEDULED,
    )
    price = models.DecimalField(
        _("price (R$)"), max_digits=10, decimal_places=2, default=Decimal("0.00")
    )
    booked_via = models.CharField(
        _("booked via"), max_length=20, choices=Channel.choices, default=Channel.RECEPTION
    )
    # A deliberate overbooking ("encaixe"): reception squeezed the patient in over the
    # professional's occupied time, after a warning naming the clash. Only this flag exempts
    # a row from the professional's no-overlap constraint (migration 0004); the room and
    # patient constraints still hold. Set only by staff paths (``appointment_book``).
    encaixe = models.BooleanField(
        _("encaixe"),
        default=False,
        help_text=_("Squeezed in over the professional's occupied time, deliberately."),
    )
    booked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("booked by"),
    )
    confirmed_via = models.CharField(
        _("confirmed via"), max_length=20, choices=Channel.choices, blank=True
    )
    confirmed_at = models.DateTimeField(_("confirmed at"), null=True, blank=True)
    confirmed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("confirmed by"),
    )
    arrived_at = models.DateTimeField(_("arrived at"), null=True, blank=True)
    started_at = models.DateTimeField(_("started at"), null=True, blank=True)
    completed_at = models.DateTimeField(_("completed at"), null=True, blank=True)
    no_show_at = models.DateTimeField(_("marked no-show at"), null=True, blank=True)
    cancelled_at = models.DateTimeField(_("cancelled at"), null=True, blank=True)
    cancelled_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("cancelled by"),
    )
    cancelled_via = models.CharField(
        _("cancelled via"), max_length=20, choices=Channel.choices, blank=True
    )
    cancellation_reason = models.CharField(_("cancellation reason"), max_length=255, blank=True)
    late_cancellation = models.BooleanField(
        _("late cancellation"),
        default=False,
        help_text=_("Cancelled within the service's cancellation window."),
    )
    notes = models.TextField(_("notes for the patient"), blank=True)
    internal_notes = models.TextField(_("internal notes"), blank=True)
    replaces = models.OneToOneField(
        "self",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="replaced_by",
        verbose_name=_("replaces"),
        help_text=_("The appointment this one was rescheduled from."),
    )
    series = models.ForeignKey(
        RecurrenceSeries,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="appointments",
        verbose_name=_("recurring series"),
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    objects = AppointmentQuerySet.as_manager()

    class Meta:
        verbose_name = _("appointment")
        verbose_name_plural = _("appointments")
        ordering = ["start"]
        constraints = [
            models.CheckConstraint(
                condition=Q(start__lt=F("end")),
                name="appointment_start_before_end",
                violation_error_message=_("The appointment must end after it starts."),
            ),
            models.CheckConstraint(
                condition=Q(occupied_start__lte=F("start")) & Q(occupied_end__gte=F("end")),
                name="appointment_occupied_covers_time",
            ),
        ]
        indexes = [
            models.Index(fields=["clinic", "start"], name="appt_clinic_start_idx"),
            models.Index(fields=["professional", "occupied_start"], name="appt_prof_idx"),
            # A professional's appointments by time (API list, agenda by professional).
            models.Index(fields=["professional", "start"], name="appt_prof_start_idx"),
            models.Index(fields=["room", "occupied_start"], name="appt_room_idx"),
            models.Index(fields=["patient", "start"], name="appt_patient_idx"),
            models.Index(fields=["clinic", "status", "start"], name="appt_clinic_status_idx"),
        ]

    def __str__(self) -> str:
        # In the active time zone: the clinic's for staff (clinic.middleware).
        return f"{self.patient} — {self.service} ({timezone.localtime(self.start):%d/%m/%Y %H:%M})"

    @property
    def is_occupying(self) -> bool:
        return self.status in OCCUPYING_STATUSES


class WaitlistEntry(ClinicOwned):
    """A patient who wants an earlier slot for a service, in a date range."""

    patient = models.ForeignKey(
        "clinic.Patient",
        on_delete=models.CASCADE,
        related_name="waitlist_entries",
        verbose_name=_("patient"),
    )
    service = models.ForeignKey(
        Service, on_delete=models.CASCADE, related_name="waitlist", verbose_name=_("service")
    )
    professional = models.ForeignKey(
        "clinic.Professional",
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="waitlist",
        verbose_name=_("professional"),
        help_text=_("Leave empty for any professional."),
    )
    earliest_date = models.DateField(_("from"))
    latest_date = models.DateField(_("until"))
    period = models.CharField(
        _("preferred period"), max_length=10, choices=DayPeriod.choices, default=DayPeriod.ANY
    )
    status = models.CharField(
        _("status"), max_length=10, choices=WaitlistStatus.choices, default=WaitlistStatus.WAITING
    )
    appointment = models.ForeignKey(
        Appointment,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("booked appointment"),
    )
    notes = models.CharField(_("notes"), max_length=255, blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("waitlist entry")
        verbose_name_plural = _("waitlist")
        ordering = ["created_at"]
        constraints = [
            models.CheckConstraint(
                condition=Q(earliest_date__lte=F("latest_date")),
                name="waitlist_valid_range",
                violation_error_message=_("'Until' must not be before 'from'."),
            )
        ]
        indexes = [models.Index(fields=["clinic", "service", "status"], name="waitlist_match_idx")]

    def __str__(self) -> str:
        return f"{self.patient} — {self.service}"


class WaitlistOffer(ClinicOwned):
    """A freed slot offered to a waitlist entry. The first claim books it; the others are
    told it was taken."""

    entry = models.ForeignKey(
        WaitlistEntry, on_delete=models.CASCADE, related_name="offers", verbose_name=_("entry")
    )
    professional = models.ForeignKey(
        "clinic.Professional",
        on_delete=models.CASCADE,
        related_name="+",
        verbose_name=_("professional"),
    )
    room = models.ForeignKey(
        "clinic.Room",
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("room"),
    )
    start = models.DateTimeField(_("start"))
    end = models.DateTimeField(_("end"))
    token = models.CharField(_("claim token"), max_length=64, unique=True, default=new_feed_token)
    status = models.CharField(
        _("status"), max_length=10, choices=OfferStatus.choices, default=OfferStatus.OPEN
    )
    expires_at = models.DateTimeField(_("expires at"))
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("waitlist offer")
        verbose_name_plural = _("waitlist offers")
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["status", "expires_at"], name="offer_open_idx")]

    def __str__(self) -> str:
        return f"{self.entry} @ {timezone.localtime(self.start):%d/%m/%Y %H:%M}"


class CalendarFeed(ClinicOwned):
    """A professional's private ICS feed: the token in the URL is the only key, so it can
    be revoked (a new one issued) at any time."""

    professional = models.OneToOneField(
        "clinic.Professional",
        on_delete=models.CASCADE,
        related_name="calendar_feed",
        verbose_name=_("professional"),
    )
    token = models.CharField(_("token"), max_length=64, unique=True, default=new_feed_token)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("calendar feed")
        verbose_name_plural = _("calendar feeds")

    def __str__(self) -> str:
        return str(self.professional)
