"""Patient portal sign-in: one-time codes, portal sessions, and the decorators every portal
view goes through.

- **Codes.** A patient types a CPF, phone or e-mail; every patient record that matches it
  (in any active clinic) may be opened by the code. The 6-digit code goes out through
  ``message_send(template="codigo_acesso")`` on the patient's preferred consented channel.
  Only an HMAC of it is kept; it expires in ``CODE_TTL``, and ``MAX_ATTEMPTS`` wrong tries
  lock it. The request only records the challenge and queues ``portal_code_send_task``,
  the same work for a known identifier and an unknown one, so neither the page nor its
  timing tells whether the CPF is known; the worker draws and sends the code. A challenge
  whose code was not sent (nobody matched, no usable channel, throttled, message failed)
  has no code that can match.
- **Throttles** (cache counters; Redis in production): code requests per IP and per
  identifier (a phone's forms are one identifier) answer 429 with a plain message; codes
  per person beyond the limit are silently not made (the page must not tell that the
  record exists); code checks per IP; wrong codes per person, across all their
  identifiers (``GUESSES_PER_PERSON``).
- **Sessions** are ``PortalSession`` rows with a random token in their own cookie
  (``COOKIE_NAME``, path ``/portal/``), separate from staff sessions. They end after
  ``settings.CUIDAR_PORTAL_IDLE_MINUTES`` of inactivity, after ``MAX_SESSION_AGE`` in all,
  on sign-out, or when the patient signs out of every device.
- **Headers.** Portal responses are ``no-store`` and refuse framing; their
  Content-Security-Policy is every public page's (``config.security_headers``).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import re
import secrets
import uuid
from dataclasses import dataclass
from datetime import timedelta
from functools import partial, wraps
from urllib.parse import urlencode

from django.conf import settings
from django.core import signing
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import F, Q
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse
from django.utils import timezone
from django.utils.crypto import constant_time_compare, salted_hmac
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from clinic.kernel.timezones import clinic_zone

from .. import validators
from ..audit import request_origin
from ..choices import ConsentPurpose, MessageStatus
from ..messaging import services as messaging
from ..messaging.models import OutboundMessage
from ..models import Clinic, Patient
from .models import PortalChallenge, PortalSession

logger = logging.getLogger(__name__)

COOKIE_NAME = "cuidar_portal"
COOKIE_PATH = "/portal/"
CHALLENGE_COOKIE = "cuidar_portal_code"
CODE_TTL = timedelta(minutes=10)
CODE_DIGITS = 6
MAX_ATTEMPTS = 5
MAX_SESSION_AGE = timedelta(hours=12)
#: last_seen_at is written at most this often (one UPDATE per minute, not per page).
TOUCH_EVERY = timedelta(seconds=60)
#: (how many, per how long): beyond it the request is refused (IP, identifier) or the code
#: is not sent (patient record).
THROTTLE_WINDOW = 15 * 60
CODES_PER_IP = 10
CODES_PER_IDENTIFIER = 3
CODES_PER_PATIENT = 3
CHECKS_PER_IP = 30
#: Wrong codes per person (all their records, identifiers and codes) per window: beyond it
#: even the right code is refused until the window passes.
GUESSES_PER_PERSON = 10


class SignInError(Exception):
    """Something the patient must be told, in plain words; ``status`` is the HTTP status."""

    status = 400

    def __init__(self, message: str, *, status: int | None = None):
        super().__init__(message)
        self.message = message
        if status is not None:
            self.status = status


class Throttled(SignInError):
    status = 429


# --- Identifiers ----------------------------------------------------------------------------
def identifier_normalize(raw: str) -> str:
    """The canonical form of what the patient typed: an e-mail in lower case, a valid CPF
    as 11 digits, or a phone in E.164. Raises ``SignInError`` when it is none of these."""
    text = (raw or "").strip()
    if "@" in text:
        if not re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", text):
            raise SignInError(_("Enter a valid e-mail address."))
        return text.lower()
    digits = re.sub(r"\D", "", text)
    if len(digits) == 11 and not re.search(r"[a-zA-Z]", text):
        with contextlib.suppress(ValidationError):  # not a CPF: maybe a phone
            validators.cpf_validate(digits)
            return digits
    with contextlib.suppress(ValidationError):
        return validators.phone_normalize(text)
    raise SignInError(_("Enter your CPF, mobile phone number or e-mail."))


def _hash(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def patients_matching(identifier: str) -> list[int]:
    """Ids of the patient records in active clinics that ``identifier`` (normalised) opens."""
    if "@" in identifier:
        condition = Q(email__iexact=identifier)
    elif identifier.startswith("+"):
        condition = Q(phone__in=validators.phone_variants(identifier))
    else:
        condition = Q(cpf=identifier)
    return list(
        Patient.objects.filter(condition, clinic__is_active=True)
        .order_by("-updated_at", "pk")
        .values_list("pk", flat=True)[:20]
    )


# --- Throttles ------------------------------------------------------------------------------
def _hit(key: str, limit: int, window: int = THROTTLE_WINDOW) -> bool:
    """Count one hit on ``key``; False once the limit is passed within the window."""
    key = f"portal-throttle:{key}"
    cache.add(key, 0, timeout=window)
    try:
        count = cache.incr(key)
    except ValueError:  # expired between add and incr
        cache.set(key, 1, timeout=window)
        count = 1
    return count <= limit


def _too_many() -> Throttled:
    return Throttled(_("Too many attempts. Please wait a few minutes and try again."))


# --- Codes ----------------------------------------------------------------------------------
def _code_hash(challenge_id: uuid.UUID, code: str) -> str:
    return salted_hmac(
        "cuidar.portal.code", f"{challenge_id}:{code}", algorithm="sha256"
    ).hexdigest()


def _no_code() -> str:
    """A code hash no code can produce: a challenge's until its code is sent, for good when
    nobody matched or the message was held back."""
    return secrets.token_hex(32)


def _identifier_key(normalized: str) -> str:
    """The identifier's throttle key: a phone in any of its forms (with or without the 9th
    digit) is one identifier, so its forms share one limit."""
    if normalized.startswith("+"):
        normalized = min(validators.phone_variants(normalized))
    return _hash(normalized)


def challenge_start(*, identifier: str, ip: str | None) -> PortalChallenge:
    """Create a sign-in challenge for ``identifier`` (as typed) and queue its code. Raises
    ``SignInError`` for input that is no identifier and ``Throttled`` past the limits;
    otherwise always returns a challenge.

    A registered identifier and an unknown one cost the same here — one lookup, one row, one
    queued task — so the answer's timing tells nothing (issue 16: only a match used to pick
    a channel and record the message in the request). The worker's
    ``challenge_code_send`` picks the channel and sends the code; until it does, and for
    good if it does not, no code opens the challenge."""
    normalized = identifier_normalize(identifier)
    if ip and not _hit(f"ip:{ip}", CODES_PER_IP):
        raise _too_many()
    if not _hit(f"id:{_identifier_key(normalized)}", CODES_PER_IDENTIFIER):
        raise _too_many()
    patient_ids = patients_matching(normalized)
    with transaction.atomic():
        challenge = PortalChallenge.objects.create(
            id=uuid.uuid4(),
            identifier_hash=_hash(normalized),
            patient_ids=patient_ids,
            code_hash=_no_code(),
            expires_at=timezone.now() + CODE_TTL,
            ip=ip,
        )
        transaction.on_commit(partial(_code_send_enqueue, str(challenge.pk)), robust=True)
    return challenge


def _code_send_enqueue(challenge_id: str) -> None:
    from .tasks import portal_code_send_task  # tasks imports this module

    try:
        # The queue of patient-facing messages: a code is awaited by someone at the screen.
        portal_code_send_task.apply_async(args=[challenge_id], queue=messaging.DELIVER_QUEUE)
    except Exception:  # the broker is down: the patient still gets their code
        # Sent from the request, whose timing then differs for a known identifier: a
        # degraded mode, logged, rather than a sign-in nobody can complete.
        logger.warning("portal code task not queued; code sent from the request", exc_info=True)
        challenge_code_send(challenge_id=challenge_id)


def challenge_code_send(*, challenge_id: str, now=None) -> bool:
    """The worker's half of ``challenge_start``: choose the record and channel, draw the code
    and send it. Returns whether a code was sent.

    A code exists only when its message goes out: nobody matched, no record has a usable
    channel, or the person has had ``CODES_PER_PATIENT`` codes in the window (counted on
    every record the identifier opens, whichever identifier asked) → the challenge keeps a
    hash no code matches. Safe twice: a challenge whose message exists is left alone."""
    now = now or timezone.now()
    with transaction.atomic():
        challenge = (
            PortalChallenge.objects.select_for_update()
            .filter(pk=challenge_id, used_at__isnull=True, expires_at__gt=now)
            .first()
        )
        if challenge is None or not challenge.patient_ids:
            return False
        key = f"portal-code:{challenge.pk}"
        if OutboundMessage.objects.filter(idempotency_key=key).exists():
            return False
        patients = list(
            Patient.objects.filter(pk__in=challenge.patient_ids, clinic__is_active=True)
            .select_related("clinic")
            .order_by("-updated_at", "pk")
        )
        recipient = _recipient(patients)
        if recipient is None:
            return False
        allowed = [
            _hit(f"patient:{patient.pk}", CODES_PER_PATIENT) for patient in patients
        ]  # every record counts this code, so another identifier finds the limit reached
        if not all(allowed):
            return False
        code = f"{secrets.randbelow(10**CODE_DIGITS):0{CODE_DIGITS}d}"
        challenge.code_hash = _code_hash(challenge.pk, code)
        challenge.save(update_fields=["code_hash"])
        messaging.message_send(
            clinic=recipient.clinic,
            patient=recipient,
            template="codigo_acesso",
            context={"code": code, "minutes": int(CODE_TTL.total_seconds() // 60)},
            idempotency_key=key,
        )
    return True


def _recipient(patients: list[Patient]) -> Patient | None:
    """The record whose channels carry the code: the first one with a usable channel (none:
    no code is made, since nobody could receive it)."""
    for patient in patients:
        if messaging.channel_plan(patient=patient, purpose=ConsentPurpose.UTILITY).usable:
            return patient
    return None


def _guess_keys(challenge: PortalChallenge) -> list[str]:
    """The person's wrong-code counters: one per record the challenge opens, so the CPF, the
    e-mail and every form of the phone draw on the same allowance. A challenge that opens
    nothing counts on its identifier, so an unknown CPF is locked like a known one."""
    ids = [f"patient:{pk}" for pk in challenge.patient_ids] or [f"id:{challenge.identifier_hash}"]
    return [f"portal-throttle:guess:{key}" for key in ids]


def _person_locked(keys: list[str]) -> bool:
    return any(count >= GUESSES_PER_PERSON for count in cache.get_many(keys).values())


def _count_wrong_guess(keys: list[str]) -> None:
    for key in keys:
        cache.add(key, 0, timeout=THROTTLE_WINDOW)
        try:
            cache.incr(key)
        except ValueError:  # expired between add and incr
            cache.set(key, 1, timeout=THROTTLE_WINDOW)


def _code_delivered(challenge: PortalChallenge) -> bool:
    """False when the code's message was held back or failed for good: such a code opens
    nothing (nobody received it, so only a guess could find it)."""
    return not OutboundMessage.objects.filter(
        idempotency_key=f"portal-code:{challenge.pk}",
        status__in=[MessageStatus.FAILED, MessageStatus.NOT_SENT],
    ).exists()


def challenge_verify(*, challenge_id: str, code: str, ip: str | None) -> list[Patient]:
    """Check ``code``; on success the challenge is used up and the records it opens are
    returned (several when the person is a patient of several clinics).

    Wrong codes are counted on the code (``MAX_ATTEMPTS``) and on the person across all
    their identifiers and codes (``GUESSES_PER_PERSON`` per window). Once the person's
    allowance is spent even the right code is refused until the window passes; a wrong code
    then gets the usual answer, so the lock links no identifier to another."""
    if ip and not _hit(f"check-ip:{ip}", CHECKS_PER_IP):
        raise _too_many()
    try:
        challenge = PortalChallenge.objects.get(pk=challenge_id)
    except (PortalChallenge.DoesNotExist, ValueError, TypeError, ValidationError):
        raise SignInError(_("This sign-in has expired. Please ask for a new code.")) from None
    now = timezone.now()
    if challenge.used_at is not None:
        raise SignInError(_("This code has already been used. Please ask for a new one."))
    if challenge.failed_attempts >= MAX_ATTEMPTS:
        raise SignInError(
            _("This code is locked after too many wrong attempts. Please ask for a new one.")
        )
    if challenge.expires_at <= now:
        raise SignInError(_("This code has expired. Codes are valid for 10 minutes."))
    digits = re.sub(r"\D", "", code or "")
    if len(digits) != CODE_DIGITS:
        raise SignInError(_("The code has 6 digits."))
    guess_keys = _guess_keys(challenge)
    person_locked = _person_locked(guess_keys)
    right = constant_time_compare(_code_hash(challenge.pk, digits), challenge.code_hash)
    if right and person_locked:
        raise Throttled(
            _(
                "Too many wrong codes were tried for your records. For your safety, please "
                "wait 15 minutes and ask for a new code."
            )
        )
    if not right or not _code_delivered(challenge):
        _count_wrong_guess(guess_keys)
        PortalChallenge.objects.filter(pk=challenge.pk).update(
            failed_attempts=F("failed_attempts") + 1
        )
        left = MAX_ATTEMPTS - challenge.failed_attempts - 1
        if left <= 0:
            raise SignInError(_("Wrong code. This code is now locked: please ask for a new one."))
        raise SignInError(
            ngettext(
                "Wrong code. You have %(left)d attempt left.",
                "Wrong code. You have %(left)d attempts left.",
                left,
            )
            % {"left": left}
        )
    # Used once: a second request with the same code loses this race.
    if not PortalChallenge.objects.filter(pk=challenge.pk, used_at__isnull=True).update(
        used_at=now
    ):
        raise SignInError(_("This code has already been used. Please ask for a new one."))
    return list(
        Patient.objects.filter(pk__in=challenge.patient_ids, clinic__is_active=True)
        .select_related("clinic")
        .order_by("clinic__name", "pk")
    )


#: How long used or expired challenges are kept (for a clinic asking "did I get a code?").
CHALLENGE_RETENTION = timedelta(days=1)


def challenges_purge(*, now=None) -> int:
    """Delete sign-in challenges older than ``CHALLENGE_RETENTION`` (a code lives 10
    minutes; the rows only show sign-in attempts)."""
    cutoff = (now or timezone.now()) - CHALLENGE_RETENTION
    deleted, _ = PortalChallenge.objects.filter(created_at__lt=cutoff).delete()
    return deleted


# --- The two short-lived cookies of the sign-in steps ---------------------------------------
_STEP_SALT = "cuidar.portal.step"


def step_token(challenge: PortalChallenge | uuid.UUID | str, *, verified: bool = False) -> str:
    challenge_id = getattr(challenge, "pk", challenge)
    return signing.dumps({"c": str(challenge_id), "v": verified}, salt=_STEP_SALT)


def step_read(value: str | None) -> tuple[str, bool] | None:
    """(challenge id, verified) from the step cookie, or None when absent or too old."""
    if not value:
        return None
    try:
        data = signing.loads(value, salt=_STEP_SALT, max_age=CODE_TTL.total_seconds() + 60)
    except signing.BadSignature:
        return None
    return data.get("c", ""), bool(data.get("v"))


def verified_patients(challenge_id: str) -> list[Patient]:
    """The records a just-verified challenge opens (for choosing the clinic)."""
    challenge = PortalChallenge.objects.filter(
        pk=challenge_id, used_at__gte=timezone.now() - CODE_TTL
    ).first()
    if challenge is None:
        return []
    return list(
        Patient.objects.filter(pk__in=challenge.patient_ids, clinic__is_active=True)
        .select_related("clinic")
        .order_by("clinic__name", "pk")
    )


# --- Sessions -------------------------------------------------------------------------------
def idle_timeout() -> timedelta:
    return timedelta(minutes=getattr(settings, "CUIDAR_PORTAL_IDLE_MINUTES", 30))


def session_start(
    *, patient: Patient, request: HttpRequest | None = None
) -> tuple[str, PortalSession]:
    """Open a portal session; returns the cookie's token (shown nowhere else) and the row."""
    token = secrets.token_urlsafe(32)
    session = PortalSession.objects.create(
        clinic_id=patient.clinic_id,
        patient=patient,
        key_hash=_hash(token),
        **request_origin(request),
    )
    return token, session


def session_for_token(token: str | None, *, now=None) -> tuple[PortalSession | None, str]:
    """The open session of a cookie's token, and why there is none ("", "expired")."""
    if not token:
        return None, ""
    session = (
        PortalSession.objects.select_related("patient", "clinic")
        .filter(key_hash=_hash(token), ended_at__isnull=True)
        .first()
    )
    if session is None:
        return None, ""
    now = now or timezone.now()
    if (
        now - session.last_seen_at > idle_timeout()
        or now - session.created_at > MAX_SESSION_AGE
        or not session.clinic.is_active
    ):
        session_end(session=session, now=now)
        return None, "expired"
    if now - session.last_seen_at > TOUCH_EVERY:
        PortalSession.objects.filter(pk=session.pk).update(last_seen_at=now)
        session.last_seen_at = now
    return session, ""


def session_end(*, session: PortalSession, now=None) -> None:
    PortalSession.objects.filter(pk=session.pk, ended_at__isnull=True).update(
        ended_at=now or timezone.now()
    )


def sessions_end_all(*, patient: Patient) -> int:
    """Sign the patient out of every device (this clinic's record)."""
    return PortalSession.objects.filter(patient=patient, ended_at__isnull=True).update(
        ended_at=timezone.now()
    )


def set_session_cookie(response: HttpResponse, token: str) -> None:
    response.set_cookie(
        COOKIE_NAME,
        token,
        path=COOKIE_PATH,
        secure=settings.SESSION_COOKIE_SECURE,
        httponly=True,
        samesite="Lax",
    )


def client_ip(request: HttpRequest) -> str | None:
    return request_origin(request)["ip"]


# --- Views' decorators ----------------------------------------------------------------------
@dataclass
class Portal:
    """What a signed-in portal view knows: ``request.portal`` — the session, and through it
    the patient and the clinic (loaded with it)."""

    session: PortalSession

    @property
    def patient(self) -> Patient:
        return self.session.patient

    @property
    def clinic(self) -> Clinic:
        return self.session.clinic


def _secure(response: HttpResponse) -> HttpResponse:
    response.headers["Cache-Control"] = "no-store"
    response.headers.setdefault("X-Frame-Options", "DENY")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    return response


def portal_public(view):
    """A portal page that needs no sign-in (the sign-in steps): the portal's headers."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args, **kwargs):
        request.portal = None
        return _secure(view(request, *args, **kwargs))

    return wrapper


def sign_in_url(request: HttpRequest, *, expired: bool = False) -> str:
    query = {}
    if request.method == "GET" and request.path.startswith(COOKIE_PATH):
        query["next"] = request.get_full_path()
    if expired:
        query["expired"] = "1"
    url = reverse("portal:sign_in")
    return f"{url}?{urlencode(query)}" if query else url


def safe_next(request: HttpRequest, value: str | None) -> str:
    """``value`` if it is a portal address on this site, else the home page."""
    if (
        value
        and value.startswith(COOKIE_PATH)
        and url_has_allowed_host_and_scheme(value, allowed_hosts={request.get_host()})
    ):
        return value
    return reverse("portal:home")


def portal_view(view):
    """A signed-in portal page: ``request.portal`` holds the session, the patient and the
    clinic; times show in the clinic's time zone. No session → the sign-in page."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args, **kwargs):
        session, why = session_for_token(request.COOKIES.get(COOKIE_NAME))
        if session is None:
            response = HttpResponseRedirect(sign_in_url(request, expired=why == "expired"))
            if why:
                response.delete_cookie(COOKIE_NAME, path=COOKIE_PATH)
            return _secure(response)
        request.portal = Portal(session=session)
        timezone.activate(clinic_zone(session.clinic))
        try:
            return _secure(view(request, *args, **kwargs))
        finally:
            timezone.deactivate()

    return wrapper
