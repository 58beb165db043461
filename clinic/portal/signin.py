"""The portal's sign-in steps (identifier → code → clinic, when there are several), sign-out
and the clinic's logo. The rules live in ``sessions``; these views only ask and answer."""

from __future__ import annotations

from urllib.parse import urlencode

from django.contrib import messages
from django.core.files.storage import default_storage
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import path, reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_POST

from .. import validators
from ..audit import audit_patient
from ..models import AuditEntry
from . import sessions
from .sessions import Portal, SignInError, portal_public, portal_view


def _next(request: HttpRequest) -> str:
    value = request.POST.get("next") or request.GET.get("next") or ""
    return sessions.safe_next(request, value)


def _with_next(name: str, next_url: str) -> str:
    return f"{reverse(name)}?{urlencode({'next': next_url})}"


def _signed_in(request: HttpRequest, patient) -> HttpResponse:
    token, _session = sessions.session_start(patient=patient, request=request)
    audit_patient(request=request, patient=patient, action=AuditEntry.Action.SIGN_IN)
    response = HttpResponseRedirect(_next(request))
    sessions.set_session_cookie(response, token)
    response.delete_cookie(sessions.CHALLENGE_COOKIE, path=sessions.COOKIE_PATH)
    return response


def _set_step_cookie(request: HttpRequest, response: HttpResponse, token: str) -> None:
    """The signed step of the sign-in (which challenge, verified yet), for its 10 minutes."""
    response.set_cookie(
        sessions.CHALLENGE_COOKIE,
        token,
        path=sessions.COOKIE_PATH,
        max_age=int(sessions.CODE_TTL.total_seconds()) + 60,
        secure=request.is_secure(),
        httponly=True,
        samesite="Lax",
    )


@portal_public
@require_http_methods(["GET", "POST"])
def sign_in(request: HttpRequest) -> HttpResponse:
    """Step 1: CPF, phone or e-mail. The answer is the same whether or not it is known."""
    context = {
        "next": _next(request),
        "identifier": "",
        "error": "",
        "expired": request.GET.get("expired") == "1",
    }
    if request.method == "POST":
        context["identifier"] = request.POST.get("identifier", "")[:200]
        try:
            challenge = sessions.challenge_start(
                identifier=context["identifier"], ip=sessions.client_ip(request)
            )
        except SignInError as error:
            context["error"] = error.message
            return render(request, "portal/signin/start.html", context, status=error.status)
        response = HttpResponseRedirect(_with_next("portal:sign_in_code", context["next"]))
        _set_step_cookie(request, response, sessions.step_token(challenge))
        return response
    return render(request, "portal/signin/start.html", context)


@portal_public
@require_http_methods(["GET", "POST"])
def sign_in_code(request: HttpRequest) -> HttpResponse:
    """Step 2: the code. One record → signed in; several → choose the clinic."""
    step = sessions.step_read(request.COOKIES.get(sessions.CHALLENGE_COOKIE))
    if step is None:
        messages.warning(request, _("This sign-in has expired. Please ask for a new code."))
        return HttpResponseRedirect(reverse("portal:sign_in"))
    challenge_id, verified = step
    if verified:
        return HttpResponseRedirect(reverse("portal:choose_clinic"))
    context = {"next": _next(request), "error": ""}
    if request.method == "POST":
        try:
            patients = sessions.challenge_verify(
                challenge_id=challenge_id,
                code=request.POST.get("code", ""),
                ip=sessions.client_ip(request),
            )
        except SignInError as error:
            context["error"] = error.message
            return render(request, "portal/signin/code.html", context, status=error.status)
        if not patients:
            messages.error(
                request, _("Your records are not available online. Please call the clinic.")
            )
            return HttpResponseRedirect(reverse("portal:sign_in"))
        if len(patients) == 1:
            return _signed_in(request, patients[0])
        response = HttpResponseRedirect(_with_next("portal:choose_clinic", context["next"]))
        _set_step_cookie(request, response, sessions.step_token(challenge_id, verified=True))
        return response
    return render(request, "portal/signin/code.html", context)


@portal_public
@require_http_methods(["GET", "POST"])
def choose_clinic(request: HttpRequest) -> HttpResponse:
    """Step 3, for a patient of several clinics: which one to open."""
    step = sessions.step_read(request.COOKIES.get(sessions.CHALLENGE_COOKIE))
    patients = sessions.verified_patients(step[0]) if step and step[1] else []
    if not patients:
        messages.warning(request, _("This sign-in has expired. Please ask for a new code."))
        return HttpResponseRedirect(reverse("portal:sign_in"))
    if request.method == "POST":
        chosen = next((p for p in patients if str(p.pk) == request.POST.get("patient")), None)
        if chosen is not None:
            return _signed_in(request, chosen)
    return render(
        request, "portal/signin/choose.html", {"patients": patients, "next": _next(request)}
    )


@portal_view
@require_POST
def sign_out(request: HttpRequest) -> HttpResponse:
    sessions.session_end(session=request.portal.session)
    response = HttpResponseRedirect(reverse("portal:sign_in"))
    response.delete_cookie(sessions.COOKIE_NAME, path=sessions.COOKIE_PATH)
    messages.success(request, _("You have signed out."))
    return response


@portal_view
@require_POST
def sign_out_everywhere(request: HttpRequest) -> HttpResponse:
    """ "Sair de todos os dispositivos": every session of this patient record ends."""
    portal: Portal = request.portal
    count = sessions.sessions_end_all(patient=portal.patient)
    response = HttpResponseRedirect(reverse("portal:sign_in"))
    response.delete_cookie(sessions.COOKIE_NAME, path=sessions.COOKIE_PATH)
    messages.success(
        request, _("You have signed out of every device (%(count)d sessions).") % {"count": count}
    )
    return response


@portal_view
def logo(request: HttpRequest) -> HttpResponse:
    """The signed-in clinic's logo, from whatever storage holds it."""
    clinic = request.portal.clinic
    if not clinic.logo:
        raise Http404
    try:
        handle = default_storage.open(clinic.logo.name, "rb")
    except OSError:
        raise Http404 from None
    media_type = validators.logo_media_type(handle.read(12))
    if not media_type:
        handle.close()
        raise Http404
    handle.seek(0)
    response = FileResponse(handle, content_type=media_type)
    response["Cache-Control"] = "private, max-age=3600"
    return response


urlpatterns = [
    path("entrar/", sign_in, name="sign_in"),
    path("entrar/codigo/", sign_in_code, name="sign_in_code"),
    path("entrar/clinica/", choose_clinic, name="choose_clinic"),
    path("sair/", sign_out, name="sign_out"),
    path("sair-de-todos/", sign_out_everywhere, name="sign_out_everywhere"),
    path("logo/", logo, name="logo"),
]
