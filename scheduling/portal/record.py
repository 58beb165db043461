"""``/portal/prontuario/``: the patient's own progress (wellness scores and vitals over time,
from the signed entries of their clinical record; confidential notes never) and a request
for a copy of their record, handled by the clinic as an LGPD request (CFM 1.638 and Lei
13.787/2018: the patient is entitled to a copy). Here in scheduling because the record sits
below the portal shell and must not import it."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods

from clinic.audit import audit_patient
from clinic.models import AuditEntry, PrivacyRequest
from clinic.portal.sessions import portal_view
from clinic.privacy import privacy_request_create
from clinic.records import charts, selectors
from clinic.records.models import EntryKind

COPY_DETAILS = "Cópia do prontuário (CFM 1.638/2002; Lei 13.787/2018)"


@portal_view
@require_http_methods(["GET", "POST"])
def my_record(request: HttpRequest) -> HttpResponse:
    patient = request.portal.patient
    if request.method == "POST":
        privacy_request_create(
            patient=patient, kind=PrivacyRequest.Kind.EXPORT, details=COPY_DETAILS
        )
        messages.success(
            request,
            _("Your request for a copy of your clinical record was sent to the clinic."),
        )
        return HttpResponseRedirect(reverse("portal:my_record"))
    rows = selectors.progress_rows(patient=patient)
    audit_patient(
        request=request,
        patient=patient,
        action=AuditEntry.Action.VIEW,
        details={"page": "clinical_record"},
    )
    return render(
        request,
        "portal/scheduling/my_record.html",
        {
            "nav": "record",
            "chart": charts.wellness_chart(rows[EntryKind.SCALES]),
            "has_data": bool(rows[EntryKind.SCALES]),
        },
    )
