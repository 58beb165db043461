"""The portal's home page: the next appointment (with what can be done about it), then the
packages with sessions left and the open payments.

It lives in ``config`` because it shows several apps at once: scheduling's part comes from
``scheduling.portal.home_context``, billing's from ``billing.portal.home_context``.
"""

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import path
from django.views.decorators.http import require_GET

from billing import portal as billing_portal
from clinic.portal.sessions import portal_view
from scheduling import portal as scheduling_portal


@portal_view
@require_GET
def home(request: HttpRequest) -> HttpResponse:
    """``/portal/``: a greeting, the next appointment, packages and open payments."""
    portal = request.portal
    context = {
        "nav": "home",
        "patient": portal.patient,
        **scheduling_portal.home_context(patient=portal.patient, clinic=portal.clinic),
        "billing_home": billing_portal.home_context(portal.patient),
    }
    return render(request, "portal/home.html", context)


urlpatterns = [path("", home, name="home")]
