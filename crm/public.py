"""The public lead form a clinic embeds on its site (``/crm/form/<key>/``): an iframe (or a
link) that works without JavaScript; ``embed.js`` only builds the iframe and passes the
host page's UTM parameters, click ids and referrer along.

Spam: a honeypot field (bots fill it; the visitor sees a thank-you and nothing is stored)
and a rate limit per address and clinic. Bad input gets the form back with its field errors.
"""

from __future__ import annotations

from django.core.cache import cache
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.clickjacking import xframe_options_exempt
from django.views.decorators.http import require_http_methods

from clinic.portal.sessions import client_ip

from . import services
from .choices import InteractionChannel, InteractionKind, LeadSource
from .forms import TRACKING_FIELDS, LeadForm
from .models import MarketingSettings

#: Submissions per address and clinic in ``RATE_WINDOW`` seconds.
RATE_LIMIT = 5
RATE_WINDOW = 600
#: The form may be framed by the clinic's site (any https origin); everything else as the
#: public pages' CSP (config/security_headers.py).
FORM_CSP = "; ".join(
    (
        "default-src 'self'",
        "img-src 'self' data:",
        "style-src 'self'",
        "script-src 'self'",
        "form-action 'self'",
        "frame-ancestors https: http://localhost:* http://127.0.0.1:*",
        "base-uri 'none'",
        "object-src 'none'",
    )
)
_UTM_SOURCES = (
    ("instagram", LeadSource.INSTAGRAM),
    ("google", LeadSource.GOOGLE_ADS),
    ("facebook", LeadSource.FACEBOOK_ADS),
    ("whatsapp", LeadSource.WHATSAPP),
)
_CLICK_SOURCES = (("gclid", LeadSource.GOOGLE_ADS), ("fbclid", LeadSource.FACEBOOK_ADS))


def _source(data: dict) -> str:
    if data.get("ref"):
        return LeadSource.REFERRAL
    for field, source in _CLICK_SOURCES:
        if data.get(field):
            return source
    utm = (data.get("utm_source") or "").lower()
    for word, source in _UTM_SOURCES:
        if word in utm:
            return source
    return LeadSource.WEBSITE


def _rate_limited(request: HttpRequest, clinic_id: int) -> bool:
    key = f"crm:lead-form:{clinic_id}:{client_ip(request) or 'unknown'}"
    cache.add(key, 0, RATE_WINDOW)
    try:
        count = cache.incr(key)
    except ValueError:  # expired between add and incr
        cache.set(key, 1, RATE_WINDOW)
        count = 1
    return count > RATE_LIMIT


def _respond(request, template, context, status=200) -> HttpResponse:
    response = render(request, template, context, status=status)
    response["Content-Security-Policy"] = FORM_CSP
    return response


@xframe_options_exempt
@require_http_methods(["GET", "POST"])
def lead_form(request: HttpRequest, key: str) -> HttpResponse:
    conf = MarketingSettings.objects.select_related("clinic").filter(form_key=key).first()
    if conf is None or not conf.clinic.is_active:
        raise Http404
    clinic = conf.clinic
    context = {"clinic": clinic, "key": key}
    if request.method == "GET":
        if request.GET.get("sent"):
            return _respond(request, "crm/lead_form_sent.html", context)
        initial = {f: request.GET.get(f, "")[:2000] for f in TRACKING_FIELDS if request.GET.get(f)}
        initial.setdefault("referrer", request.META.get("HTTP_REFERER", "")[:2000])
        return _respond(
            request, "crm/lead_form.html", {**context, "form": LeadForm(initial=initial)}
        )

    form = LeadForm(request.POST)
    if form.is_spam:
        # The bot sees what a person would; nothing is stored.
        return redirect(f"{request.path}?sent=1")
    if _rate_limited(request, clinic.pk):
        context["error"] = _("Too many messages from this connection. Please try again later.")
        return _respond(request, "crm/lead_form.html", {**context, "form": form}, status=429)
    if not form.is_valid():
        return _respond(request, "crm/lead_form.html", {**context, "form": form}, status=400)
    data = form.cleaned_data
    services.lead_capture(
        clinic=clinic,
        name=data["name"],
        phone=data["phone"],
        email=data["email"],
        message=data["message"],
        interest_type=data["interest_type"],
        marketing_consent=data["marketing_consent"],
        referral_code=data["ref"],
        source=_source(data),
        channel=InteractionChannel.WEBSITE,
        kind=InteractionKind.FORM,
        **{f: data[f] for f in TRACKING_FIELDS if f != "ref" and data.get(f)},
    )
    return redirect(f"{request.path}?sent=1")
