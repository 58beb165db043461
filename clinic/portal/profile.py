"""Portal "my data": contact data and open sessions, consents per channel and purpose,
and privacy (LGPD): download everything the clinic holds, ask for deletion.

Views only read and ask: writes go through ``services.patient_update`` and the services in
``clinic.privacy``. Nothing in these URLs names a patient: every query is scoped to the
signed-in ``request.portal.patient`` (and so to its clinic).
"""

from __future__ import annotations

import json
import re
from datetime import date, datetime

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import path, reverse
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_http_methods

from .. import privacy, services
from ..audit import audit_entries_about, audit_entry_for_patient, audit_patient
from ..choices import ConsentPurpose, ContactChannel
from ..models import AuditEntry, Consent, PrivacyRequest
from . import sessions
from .forms import ConsentsForm, ContactForm, DeletionRequestForm, consent_field_name
from .models import PortalSession
from .sessions import Portal, portal_view

CONSENT_HISTORY_PAGE = 50
SESSIONS_SHOWN = 20
REQUESTS_SHOWN = 20
#: The latest accesses to the patient's data shown on the privacy page.
ACCESSES_SHOWN = 30

#: What each purpose means, in plain words (shown beside the choices).
PURPOSE_HELP = {
    ConsentPurpose.UTILITY: gettext_lazy(
        "Messages about your care: appointment reminders and confirmations, changes to your "
        "appointments, payment notices and the codes to sign in here. Without them on any "
        "channel you may miss a reminder."
    ),
    ConsentPurpose.MARKETING: gettext_lazy(
        "News, promotions, campaigns and birthday greetings from the clinic. Optional: saying "
        "no does not change your care in any way."
    ),
    ConsentPurpose.DATA_SHARING: gettext_lazy(
        "Letting the clinic share your contact data with its partners (for example a "
        "laboratory or a partner company) so that they can contact you. Optional: saying no "
        "does not change your care in any way."
    ),
}
PURPOSE_TITLES = {
    ConsentPurpose.UTILITY: gettext_lazy("Messages about your care"),
    ConsentPurpose.MARKETING: gettext_lazy("News and promotions"),
    ConsentPurpose.DATA_SHARING: gettext_lazy("Sharing with partners"),
}


def _posted(request: HttpRequest):
    """The submitted data of a POST (even an empty one), None for a GET."""
    return request.POST if request.method == "POST" else None


# --- My data --------------------------------------------------------------------------------
_BROWSERS = (
    ("Edg", "Edge"),
    ("OPR", "Opera"),
    ("SamsungBrowser", "Samsung Internet"),
    ("FxiOS", "Firefox"),
    ("Firefox", "Firefox"),
    ("CriOS", "Chrome"),
    ("Chrome", "Chrome"),
    ("Safari", "Safari"),
)
_SYSTEMS = (
    ("Android", "Android"),
    ("iPhone", "iPhone"),
    ("iPad", "iPad"),
    ("CrOS", "ChromeOS"),
    ("Windows", "Windows"),
    ("Mac OS X", "macOS"),
    ("Macintosh", "macOS"),
    ("Linux", "Linux"),
)


def device_label(user_agent: str) -> str:
    """A short name for a browser's user agent: "Chrome · Android"."""
    browser = next((name for key, name in _BROWSERS if key in user_agent), "")
    system = next((name for key, name in _SYSTEMS if key in user_agent), "")
    label = " · ".join(p for p in (browser, system) if p)
    if label:
        return label
    if user_agent:
        return user_agent[:40] + ("…" if len(user_agent) > 40 else "")
    return _("Unknown device")


def _open_sessions(portal: Portal) -> list[PortalSession]:
    """The patient's sessions that still open the portal (one query)."""
    now = timezone.now()
    rows = (
        PortalSession.objects.for_clinic(portal.clinic)
        .filter(
            patient=portal.patient,
            ended_at__isnull=True,
            last_seen_at__gte=now - sessions.idle_timeout(),
            created_at__gte=now - sessions.MAX_SESSION_AGE,
        )
        .only("created_at", "last_seen_at", "user_agent")
        .order_by("-last_seen_at", "-pk")[:SESSIONS_SHOWN]
    )
    result = list(rows)
    for row in result:
        row.device = device_label(row.user_agent)
        row.is_current = row.pk == portal.session.pk
    return result


@portal_view
@require_http_methods(["GET", "POST"])
def profile(request: HttpRequest) -> HttpResponse:
    """Who the patient is (read-only), their contact data (editable) and their sessions."""
    portal: Portal = request.portal
    patient = portal.patient
    form = ContactForm(_posted(request), patient=patient)
    status = 200
    if request.method == "POST":
        if form.is_valid():
            changes = form.changes()
            try:
                if changes:
                    services.patient_update(patient=patient, **changes)
            except ValidationError as error:
                # The model's own checks (rare: the form checks the same things first).
                for field, errors in error.message_dict.items():
                    form.add_error(field if field in form.fields else None, errors)
                form._describe()
            else:
                messages.success(request, _("Your contact details were saved."))
                return HttpResponseRedirect(reverse("portal:profile"))
        status = 400
    context = {
        "nav": "profile",
        "patient": patient,
        "form": form,
        "sessions": _open_sessions(portal),
    }
    return render(request, "portal/clinic/profile.html", context, status=status)


# --- Consents -------------------------------------------------------------------------------
def _consent_groups(form: ConsentsForm, in_force: dict) -> list[dict]:
    """The form's choices grouped by purpose, each with the decision in force."""
    groups = []
    for purpose in privacy.PORTAL_CONSENT_PURPOSES:
        choices = []
        for channel in privacy.PORTAL_CONSENT_CHANNELS:
            choices.append(
                {
                    "field": form[consent_field_name(purpose, channel)],
                    "channel": ContactChannel(channel).label,
                    "current": in_force.get((channel, purpose)),
                }
            )
        groups.append(
            {
                "purpose": purpose,
                "title": PURPOSE_TITLES[purpose],
                "help": PURPOSE_HELP[purpose],
                "choices": choices,
            }
        )
    return groups


@portal_view
@require_http_methods(["GET", "POST"])
def consents(request: HttpRequest) -> HttpResponse:
    """Yes/no per channel and purpose, and the history of every decision recorded."""
    portal: Portal = request.portal
    patient = portal.patient
    in_force = privacy.consents_in_force(patient=patient)
    form = ConsentsForm(
        _posted(request),
        channels=privacy.PORTAL_CONSENT_CHANNELS,
        purposes=privacy.PORTAL_CONSENT_PURPOSES,
        in_force=in_force,
    )
    status = 200
    if request.method == "POST":
        if form.is_valid():
            recorded = privacy.consents_record_from_portal(
                patient=patient, decisions=form.decisions()
            )
            if recorded:
                messages.success(request, _("Your choices were saved."))
            else:
                messages.info(request, _("Nothing changed: your choices were already these."))
            return HttpResponseRedirect(reverse("portal:consents"))
        status = 400
    history = Paginator(
        Consent.objects.for_clinic(portal.clinic)
        .filter(patient=patient)
        .order_by("-recorded_at", "-pk")
        .only("recorded_at", "channel", "purpose", "status", "source"),
        CONSENT_HISTORY_PAGE,
    ).get_page(request.GET.get("page"))
    context = {
        "nav": "profile",
        "form": form,
        "groups": _consent_groups(form, in_force),
        "history": history,
    }
    return render(request, "portal/clinic/consents.html", context, status=status)


# --- Privacy --------------------------------------------------------------------------------
@portal_view
@require_http_methods(["GET", "POST"])
def privacy_page(request: HttpRequest) -> HttpResponse:
    """The patient's rights, the downloads, and the deletion request with its status."""
    portal: Portal = request.portal
    patient = portal.patient
    form = DeletionRequestForm(_posted(request))
    status = 200
    error = ""
    if request.method == "POST":
        if form.is_valid():
            try:
                privacy.privacy_request_create(
                    patient=patient,
                    kind=PrivacyRequest.Kind.DELETION,
                    details=form.cleaned_data["details"],
                )
            except privacy.DeletionAlreadyRequested as refused:
                error = refused.message
                status = 409
            else:
                messages.success(
                    request,
                    _("Your request was sent to the clinic. You can follow it on this page."),
                )
                return HttpResponseRedirect(reverse("portal:privacy"))
        else:
            status = 400
    requests = list(privacy.privacy_requests_of(patient=patient)[:REQUESTS_SHOWN])
    open_deletion = (
        privacy.privacy_requests_of(patient=patient)
        .filter(kind=PrivacyRequest.Kind.DELETION, status=PrivacyRequest.Status.OPEN)
        .first()
    )
    context = {
        "nav": "profile",
        "form": form,
        "error": error,
        "requests": requests,
        "open_deletion": open_deletion,
        "accesses": [
            audit_entry_for_patient(entry)
            for entry in audit_entries_about(patient=patient, limit=ACCESSES_SHOWN)
        ],
    }
    return render(request, "portal/clinic/privacy.html", context, status=status)


def _export_filename(portal: Portal, extension: str) -> str:
    return f"meus-dados-{timezone.localdate():%Y-%m-%d}.{extension}"


@portal_view
@require_http_methods(["GET", "POST"])
def privacy_export_json(request: HttpRequest) -> HttpResponse:
    """Everything the clinic holds about the patient, as a JSON file (LGPD art. 18, V).
    A download is a POST (it is recorded); a GET goes back to the privacy page."""
    if request.method != "POST":
        return HttpResponseRedirect(reverse("portal:privacy"))
    portal: Portal = request.portal
    export = privacy.patient_export(patient=portal.patient)
    privacy.privacy_export_record(patient=portal.patient, file_format="json")
    audit_patient(
        request=request,
        patient=portal.patient,
        action=AuditEntry.Action.EXPORT,
        details={"format": "json"},
    )
    response = HttpResponse(
        json.dumps(export.as_json(), ensure_ascii=False, indent=2, default=str),
        content_type="application/json; charset=utf-8",
    )
    response["Content-Disposition"] = f'attachment; filename="{_export_filename(portal, "json")}"'
    return response


# The readable export: section data (JSON-ready, from every app) shown as nested lists of
# labelled values. Keys the apps use are labelled here; others are shown as written.
EXPORT_LABELS = {
    "full_name": gettext_lazy("Full name"),
    "social_name": gettext_lazy("Social name"),
    "cpf": gettext_lazy("CPF"),
    "birth_date": gettext_lazy("Birth date"),
    "sex": gettext_lazy("Sex"),
    "gender_identity": gettext_lazy("Gender identity"),
    "phone": gettext_lazy("Mobile phone"),
    "email": gettext_lazy("E-mail"),
    "preferred_channel": gettext_lazy("Preferred channel"),
    "postal_code": gettext_lazy("CEP"),
    "street": gettext_lazy("Street"),
    "number": gettext_lazy("Number"),
    "complement": gettext_lazy("Complement"),
    "district": gettext_lazy("District"),
    "city": gettext_lazy("City"),
    "state": gettext_lazy("State"),
    "blood_type": gettext_lazy("Blood type"),
    "allergies": gettext_lazy("Allergies"),
    "chronic_conditions": gettext_lazy("Chronic conditions"),
    "medications": gettext_lazy("Medications in use"),
    "lead_source": gettext_lazy("How you found the clinic"),
    "reception_notes": gettext_lazy("Reception notes"),
    "no_show_count": gettext_lazy("Missed appointments"),
    "created_at": gettext_lazy("Created at"),
    "updated_at": gettext_lazy("Last changed at"),
    "recorded_at": gettext_lazy("Recorded at"),
    "channel": gettext_lazy("Channel"),
    "purpose": gettext_lazy("Purpose"),
    "decision": gettext_lazy("Decision"),
    "legal_basis": gettext_lazy("Legal basis"),
    "source": gettext_lazy("Where it was recorded"),
    "text_version": gettext_lazy("Text version"),
    "sent_at": gettext_lazy("Sent at"),
    "received_at": gettext_lazy("Received at"),
    "to": gettext_lazy("To"),
    "from": gettext_lazy("From"),
    "status": gettext_lazy("Status"),
    "subject": gettext_lazy("Subject"),
    "text": gettext_lazy("Text"),
    "action": gettext_lazy("What was done"),
    "signed_in_at": gettext_lazy("Signed in at"),
    "last_seen_at": gettext_lazy("Last seen"),
    "ended_at": gettext_lazy("Ended at"),
    "ip": gettext_lazy("IP address"),
    "device": gettext_lazy("Device"),
    "requested_at": gettext_lazy("Requested at"),
    "request": gettext_lazy("Request"),
    "details": gettext_lazy("What you wrote"),
    "handled_at": gettext_lazy("Handled at"),
    "resolution": gettext_lazy("Answer from the clinic"),
    # Keys other apps are likely to use.
    "starts_at": gettext_lazy("Starts at"),
    "ends_at": gettext_lazy("Ends at"),
    "service": gettext_lazy("Service"),
    "professional": gettext_lazy("Professional"),
    "room": gettext_lazy("Room"),
    "amount": gettext_lazy("Amount"),
    "method": gettext_lazy("Payment method"),
    "due_date": gettext_lazy("Due date"),
    "paid_at": gettext_lazy("Paid at"),
    "description": gettext_lazy("Description"),
    "notes": gettext_lazy("Notes"),
    "name": gettext_lazy("Name"),
    "expires_at": gettext_lazy("Expires at"),
    "sessions_total": gettext_lazy("Sessions"),
    "sessions_used": gettext_lazy("Sessions used"),
    "sessions_left": gettext_lazy("Sessions left"),
}
_ISO_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}")
_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def _label(key) -> str:
    key = str(key)
    label = EXPORT_LABELS.get(key)
    return str(label) if label is not None else key.replace("_", " ").capitalize()


def _node(value) -> dict:
    """A section's JSON-ready value as a tree the template draws (dates in local time)."""
    if value is None or value == "" or value == [] or value == {}:
        return {"kind": "empty"}
    if isinstance(value, bool):
        return {"kind": "text", "value": _("Yes") if value else _("No")}
    if isinstance(value, dict):
        return {"kind": "fields", "items": [(_label(k), _node(v)) for k, v in value.items()]}
    if isinstance(value, list | tuple):
        return {"kind": "list", "items": [_node(v) for v in value]}
    if isinstance(value, datetime):
        return {"kind": "datetime", "value": value}
    if isinstance(value, date):
        return {"kind": "date", "value": value}
    if isinstance(value, str):
        if _ISO_DATETIME.match(value) and (parsed := parse_datetime(value)) is not None:
            return {"kind": "datetime", "value": parsed}
        if _ISO_DATE.match(value) and (parsed := parse_date(value)) is not None:
            return {"kind": "date", "value": parsed}
    return {"kind": "text", "value": str(value)}


@portal_view
@require_http_methods(["GET", "POST"])
def privacy_export_html(request: HttpRequest) -> HttpResponse:
    """The same data as the JSON file, as a page to read, print or save as PDF."""
    if request.method != "POST":
        return HttpResponseRedirect(reverse("portal:privacy"))
    portal: Portal = request.portal
    export = privacy.patient_export(patient=portal.patient)
    privacy.privacy_export_record(patient=portal.patient, file_format="html")
    audit_patient(
        request=request,
        patient=portal.patient,
        action=AuditEntry.Action.EXPORT,
        details={"format": "html"},
    )
    context = {
        "nav": "profile",
        "export": export,
        "clinic_info": [
            (_("Clinic"), export.clinic["legal_name"] or export.clinic["name"]),
            (_("CNPJ"), export.clinic["cnpj"]),
            (_("Address"), export.clinic["address"]),
            (_("Phone"), export.clinic["phone"]),
            (_("E-mail"), export.clinic["email"]),
        ],
        "sections": [
            {"key": key, "title": title, "node": _node(data)}
            for key, title, data in export.sections
        ],
    }
    return render(request, "portal/clinic/export.html", context)


urlpatterns = [
    path("meus-dados/", profile, name="profile"),
    path("meus-dados/consentimentos/", consents, name="consents"),
    path("meus-dados/privacidade/", privacy_page, name="privacy"),
    path(
        "meus-dados/privacidade/meus-dados.json",
        privacy_export_json,
        name="privacy_export_json",
    ),
    path(
        "meus-dados/privacidade/meus-dados.html",
        privacy_export_html,
        name="privacy_export_html",
    ),
]
