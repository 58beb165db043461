"""Portuguese date and time phrases, read our own way (issue 24, DESK.md "Portuguese dates").

General parsers misread Brazilian input (``dateparser`` reads 06/02 as 2 June in search
mode), so the rules are ours:

- ``dd/mm`` and ``dd/mm/aaaa`` always, never ``mm/dd``; an impossible date (31/02) is no date;
- ``hoje``, ``amanhã``, ``depois de amanhã``, ``daqui a 3 dias``, ``semana que vem``,
  ``fim de semana``, ``mês que vem``;
- weekdays: ``sexta`` and ``próxima sexta`` are the next Friday after today; ``sexta que
  vem`` is Friday of *next week* (the meaning in much of Brazil, duckling #83); ``essa
  sexta`` is this week's;
- ``dia 12`` is the next 12th (this month, or next if it has passed); ``12 de março``;
- times: ``15h``, ``15:30``, ``15h30``, ``às 3 da tarde``, ``meio-dia``, ``10 e meia``;
- periods: ``de manhã`` (7–12 h), ``à tarde`` (12–18 h), ``fim da tarde`` (16–18 h),
  ``à noite`` (18–22 h), ``cedo``/``primeira hora`` (7–9 h), ``hora do almoço`` (12–14 h).

:func:`parse_when` returns a :class:`When` — a span of days and, when said, a time or a
period — or ``None``. The dialogue always echoes the absolute date back
(:func:`describe`: "sexta, 14/03, 9h") before anything is booked.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from .normalize import normalize

WEEKDAYS = {
    "segunda": 0,
    "seg": 0,
    "terca": 1,
    "ter": 1,
    "quarta": 2,
    "qua": 2,
    "quinta": 3,
    "qui": 3,
    "sexta": 4,
    "sex": 4,
    "sabado": 5,
    "sab": 5,
    "domingo": 6,
    "dom": 6,
}
WEEKDAY_NAMES = ["segunda", "terça", "quarta", "quinta", "sexta", "sábado", "domingo"]
MONTHS = {
    "janeiro": 1,
    "jan": 1,
    "fevereiro": 2,
    "fev": 2,
    "marco": 3,
    "mar": 3,
    "abril": 4,
    "abr": 4,
    "maio": 5,
    "mai": 5,
    "junho": 6,
    "jun": 6,
    "julho": 7,
    "jul": 7,
    "agosto": 8,
    "ago": 8,
    "setembro": 9,
    "set": 9,
    "outubro": 10,
    "out": 10,
    "novembro": 11,
    "nov": 11,
    "dezembro": 12,
    "dez": 12,
}
NUMBER_WORDS = {
    "uma": 1,
    "um": 1,
    "duas": 2,
    "dois": 2,
    "tres": 3,
    "quatro": 4,
    "cinco": 5,
    "seis": 6,
    "sete": 7,
    "oito": 8,
    "nove": 9,
    "dez": 10,
    "onze": 11,
    "doze": 12,
    "quinze": 15,
}

#: Periods of the day: (name, first hour, hour after the last).
PERIODS = {
    "early": (7, 9),
    "morning": (7, 12),
    "lunch": (12, 14),
    "afternoon": (12, 18),
    "late_afternoon": (16, 18),
    "evening": (18, 22),
}
PERIOD_WORDS = {
    "early": "bem cedo",
    "morning": "de manhã",
    "lunch": "na hora do almoço",
    "afternoon": "à tarde",
    "late_afternoon": "no fim da tarde",
    "evening": "à noite",
}


@dataclass(frozen=True)
class When:
    """What a phrase said: days ``first_day``..``last_day`` (one day when equal, ``None``
    when no day was said), and a ``time`` or a ``period`` (a key of ``PERIODS``)."""

    first_day: date | None = None
    last_day: date | None = None
    time: time | None = None
    period: str | None = None

    @property
    def day(self) -> date | None:
        return self.first_day if self.first_day == self.last_day else None

    def hours(self) -> tuple[int, int] | None:
        """The hours [from, to) the patient asked for, if any."""
        if self.time is not None:
            return (self.time.hour, self.time.hour + 1)
        return PERIODS.get(self.period) if self.period else None

    def merged(self, other: When | None) -> When:
        """This, completed by what ``other`` (an earlier answer) said and this did not."""
        if other is None:
            return self
        first, last = self.first_day, self.last_day
        if first is None:
            first, last = other.first_day, other.last_day
        moment, period = self.time, self.period
        if moment is None and period is None:
            moment, period = other.time, other.period
        return When(first, last, moment, period)

    def as_json(self) -> dict:
        return {
            "first_day": self.first_day.isoformat() if self.first_day else None,
            "last_day": self.last_day.isoformat() if self.last_day else None,
            "time": self.time.strftime("%H:%M") if self.time else None,
            "period": self.period,
        }

    @classmethod
    def from_json(cls, data: dict | None) -> When | None:
        if not data:
            return None
        return cls(
            date.fromisoformat(data["first_day"]) if data.get("first_day") else None,
            date.fromisoformat(data["last_day"]) if data.get("last_day") else None,
            time.fromisoformat(data["time"]) if data.get("time") else None,
            data.get("period"),
        )


def _valid(year: int, month: int, day: int) -> date | None:
    try:
        return date(year, month, day)
    except ValueError:
        return None


def _next_date(today: date, month: int, day: int, year: int | None) -> date | None:
    if year is not None:
        if year < 100:
            year += 2000
        return _valid(year, month, day)
    found = _valid(today.year, month, day)
    if found is None or found < today:
        found = _valid(today.year + 1, month, day)
    return found


def _next_day_of_month(today: date, day: int) -> date | None:
    month, year = today.month, today.year
    for _ in range(13):
        found = _valid(year, month, day)
        if found is not None and found >= today:
            return found
        month += 1
        if month > 12:
            month, year = 1, year + 1
    return None


_DAY_MONTH = re.compile(r"\b(\d{1,2})[/.-](\d{1,2})(?:[/.-](\d{2,4}))?\b")
_DAY_OF_MONTH_NAME = re.compile(
    r"\b(?:dia\s+)?(\d{1,2})o?\s+(?:de\s+)?("
    + "|".join(sorted(MONTHS, key=len, reverse=True))
    + r")\b(?:\s+(?:de\s+)?(\d{4}))?"
)
_DAY_OF_MONTH = re.compile(r"\bdia\s+(\d{1,2})o?\b")
_IN_DAYS = re.compile(r"\b(?:daqui|em|dentro de)\s+(?:a\s+)?(\d+|\w+)\s+(dias?|semanas?)\b")
_WEEKDAY = re.compile(
    r"\b(?:(proxima|proximo|prox|essa|esta|nessa|nesta|na|no)\s+)?("
    + "|".join(sorted(WEEKDAYS, key=len, reverse=True))
    + r")(?:\s*-?\s*feira)?\b(\s+(?:que\s+vem|da\s+semana\s+que\s+vem|da\s+proxima\s+semana))?"
)


def _days(text: str, today: date) -> tuple[date | None, date | None, str]:
    """The days a phrase names, and the phrase with them removed (so that "12/03" is not
    also read as a time)."""
    found = _DAY_MONTH.search(text)
    if found:
        day, month = int(found.group(1)), int(found.group(2))
        year = int(found.group(3)) if found.group(3) else None
        if 1 <= month <= 12:
            when = _next_date(today, month, day, year)
            return when, when, text[: found.start()] + " " + text[found.end() :]
        return None, None, text
    found = _DAY_OF_MONTH_NAME.search(text)
    if found:
        year = int(found.group(3)) if found.group(3) else None
        when = _next_date(today, MONTHS[found.group(2)], int(found.group(1)), year)
        return when, when, text[: found.start()] + " " + text[found.end() :]
    if re.search(r"\bdepois\s+de\s+amanha\b", text):
        when = today + timedelta(days=2)
        return when, when, re.sub(r"\bdepois\s+de\s+amanha\b", " ", text)
    if re.search(r"\bamanha\b", text):
        when = today + timedelta(days=1)
        return when, when, re.sub(r"\bamanha\b", " ", text, count=1)
    if re.search(r"\bhoje\b", text):
        return today, today, re.sub(r"\bhoje\b", " ", text)
    found = _IN_DAYS.search(text)
    if found:
        amount = found.group(1)
        n = int(amount) if amount.isdigit() else NUMBER_WORDS.get(amount)
        if n is not None:
            when = today + timedelta(days=n * (7 if found.group(2).startswith("semana") else 1))
            return when, when, text[: found.start()] + " " + text[found.end() :]
    found = _WEEKDAY.search(text)
    if found:
        prefix, weekday, next_week = found.group(1), WEEKDAYS[found.group(2)], found.group(3)
        # A bare "seg"/"ter"/"qua"… could be another word: only as a weekday with a hint.
        short = len(found.group(2)) <= 3
        if not short or prefix or next_week or "feira" in found.group(0):
            if next_week:
                monday = today - timedelta(days=today.weekday()) + timedelta(days=7)
                when = monday + timedelta(days=weekday)
            elif prefix in ("essa", "esta", "nessa", "nesta"):
                when = today + timedelta(days=(weekday - today.weekday()) % 7)
            else:
                ahead = (weekday - today.weekday()) % 7 or 7
                when = today + timedelta(days=ahead)
            return when, when, text[: found.start()] + " " + text[found.end() :]
    if re.search(r"\b(?:fim|final)\s+de\s+semana\b", text):
        saturday = today + timedelta(days=(5 - today.weekday()) % 7)
        if saturday < today:
            saturday += timedelta(days=7)
        return saturday, saturday + timedelta(days=1), text
    if re.search(r"\b(?:semana\s+que\s+vem|proxima\s+semana)\b", text):
        monday = today - timedelta(days=today.weekday()) + timedelta(days=7)
        return monday, monday + timedelta(days=6), text
    if re.search(r"\b(?:essa|esta|nessa|nesta)\s+semana\b", text):
        sunday = today + timedelta(days=6 - today.weekday())
        return today, sunday, text
    if re.search(r"\b(?:mes\s+que\s+vem|proximo\s+mes)\b", text):
        first = (today.replace(day=1) + timedelta(days=32)).replace(day=1)
        last = (first + timedelta(days=32)).replace(day=1) - timedelta(days=1)
        return first, last, text
    found = _DAY_OF_MONTH.search(text)
    if found:
        when = _next_day_of_month(today, int(found.group(1)))
        return when, when, text[: found.start()] + " " + text[found.end() :]
    return None, None, text


_PERIOD_PATTERNS = [
    ("late_afternoon", r"\b(?:fim|final|finalzinho)\s+(?:da|de)\s+tarde\b"),
    ("early", r"\b(?:bem\s+cedo|cedinho|primeira\s+hora|logo\s+cedo|cedo)\b"),
    ("lunch", r"\b(?:hora\s+do\s+almoco|horario\s+de\s+almoco|almoco)\b"),
    ("morning", r"\bmanha\b"),
    ("afternoon", r"\b(?:tarde|tardinha)\b"),
    ("evening", r"\b(?:noite|noitinha)\b"),
]

_CLOCK = re.compile(
    r"\b(?:as|a|pelas|por\s+volta\s+das|la\s+pelas|umas|depois\s+das|antes\s+das)?\s*"
    r"(\d{1,2})\s*(?:(?::|h|hs|horas?)\s*(\d{2})?|\s+e\s+(meia|quinze|\d{2}))"
    r"(?:\s*(?:min|minutos))?\b"
)
_BARE_HOUR = re.compile(r"\b(?:as|pelas|umas|por\s+volta\s+das)\s+(\d{1,2}|\w+)\b")
_HOUR_OF_PERIOD = re.compile(r"\b(\d{1,2}|\w+)\s*h?\s+(?:da|de)\s+(manha|tarde|noite)\b")


def _time(text: str) -> tuple[time | None, str | None]:
    """A clock time or a period of the day."""
    if re.search(r"\bmeio\s*-?\s*dia\s+e\s+meia\b", text):
        return time(12, 30), None
    if re.search(r"\bmeio\s*-?\s*dia\b", text):
        return time(12, 0), None
    found = _HOUR_OF_PERIOD.search(text)
    if found:
        word = found.group(1)
        hour = int(word) if word.isdigit() else NUMBER_WORDS.get(word)
        if hour is not None and 1 <= hour <= 12:
            part = found.group(2)
            if part in ("tarde", "noite") and hour < 12:
                hour += 12
            minute = 30 if re.search(r"\be\s+meia\b", text[found.start() :]) else 0
            return time(hour % 24, minute), None
    found = _CLOCK.search(text)
    if found:
        hour = int(found.group(1))
        minutes = found.group(2) or found.group(3)
        minute = 30 if minutes == "meia" else 15 if minutes == "quinze" else int(minutes or 0)
        if hour <= 23 and minute <= 59:
            hour = _afternoon_guess(hour, text)
            return time(hour, minute), None
    found = _BARE_HOUR.search(text)
    if found:
        word = found.group(1)
        hour = int(word) if word.isdigit() else NUMBER_WORDS.get(word)
        if hour is not None and hour <= 23:
            return time(_afternoon_guess(hour, text), 0), None
    for name, pattern in _PERIOD_PATTERNS:
        if re.search(pattern, text):
            return None, name
    return None, None


def _afternoon_guess(hour: int, text: str) -> int:
    """ "às 3" at a clinic means 15 h; "às 3 da manhã" never reaches here. Hours 1–6 said
    without a period are afternoon hours; "tarde"/"noite" in the phrase moves 1–11 too."""
    if 1 <= hour <= 11 and re.search(r"\b(?:tarde|noite)\b", text):
        return hour + 12
    if 1 <= hour <= 6:
        return hour + 12
    return hour


def parse_when(text: str, *, today: date) -> When | None:
    """What day(s) and time a patient's phrase names, ``today`` being the clinic's local
    date; ``None`` when it names neither."""
    norm = normalize(text)
    first, last, rest = _days(norm, today)
    moment, period = _time(rest)
    if first is None and moment is None and period is None:
        return None
    return When(first, last, moment, period)


def describe(moment: datetime) -> str:
    """The absolute date and time, as echoed to the patient: "sexta, 14/03, 9h" or
    "sexta, 14/03, 9h30" (``moment`` in the clinic's zone)."""
    clock = f"{moment.hour}h" + (f"{moment.minute:02d}" if moment.minute else "")
    return f"{WEEKDAY_NAMES[moment.weekday()]}, {moment:%d/%m}, {clock}"


def describe_day(day: date) -> str:
    return f"{WEEKDAY_NAMES[day.weekday()]}, {day:%d/%m}"


def today_in(zone) -> date:
    from django.utils import timezone

    return timezone.now().astimezone(zone).date()


def local_now(zone) -> datetime:
    from django.utils import timezone

    return timezone.now().astimezone(zone)
