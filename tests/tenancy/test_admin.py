"""Clinic B's rows through clinic A's admin: every registered ModelAdmin and every view the
admin adds, walked from the admin site (the model of NetBox's generic view tests: one test
per kind of view, parametrised over every model).

The user is clinic A's administrator holding *every* permission, so what keeps B's rows out
is the tenancy scoping (``clinic/admin/base.py``), never a missing permission.
"""

from __future__ import annotations

import pytest
from django import forms
from django.contrib import admin
from django.contrib.contenttypes.models import ContentType
from django.test import RequestFactory
from django.urls import reverse
from django.utils import timezone

from tests.billing.factories import InvoiceFactory, PaymentFactory

from .conftest import B_MARK, LOGS, footprint, snapshot
from .rows import ROWS, clinic_of, clinic_owned, make
from .walk import custom_admin_views, tenant_admin_models

MODELS = tenant_admin_models()


def _id(model) -> str:
    return model._meta.object_name


def _url(model, view: str, *args) -> str:
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_{view}", args=args)


@pytest.fixture
def pair(request, clinic_a, clinic_b):
    """(A's row, B's row) of the parametrised model."""
    name = request.param
    return make(name, clinic_a), make(name, clinic_b)


def _pairs(models):
    return pytest.mark.parametrize(
        "model,pair", [(m, _id(m)) for m in models], ids=[_id(m) for m in models], indirect=["pair"]
    )


def _b_rows_in(queryset, clinic_b) -> list:
    """The rows of ``queryset`` that belong to clinic B (B itself, for Clinic)."""
    model = queryset.model
    if model._meta.object_name == "Clinic":
        return list(queryset.filter(pk=clinic_b.pk))
    if not clinic_owned(model):
        return []
    return list(queryset.filter(clinic=clinic_b))


def _model_choice_fields(form) -> dict[str, forms.ModelChoiceField]:
    return {
        name: field
        for name, field in form.fields.items()
        if isinstance(field, forms.ModelChoiceField)
    }


def _forms_in(context) -> list[forms.BaseForm]:
    """Every form a page renders: its main form, the admin form and inline forms."""
    found = []
    for ctx in context or []:
        for value in ctx.flatten().values() if hasattr(ctx, "flatten") else ctx.values():
            if isinstance(value, forms.BaseForm):
                found.append(value)
            elif hasattr(value, "form") and isinstance(value.form, forms.BaseForm):
                found.append(value.form)  # AdminForm
            elif isinstance(value, list):
                for item in value:  # inline_admin_formsets
                    formset = getattr(item, "formset", None)
                    if formset is not None:
                        found.extend([*formset.forms, formset.empty_form])
    unique = {id(f): f for f in found}
    return list(unique.values())


def assert_choices_scoped(context, clinic_b):
    """No choice of any form on the page is one of clinic B's rows."""
    for form in _forms_in(context):
        for name, field in _model_choice_fields(form).items():
            leaked = _b_rows_in(field.queryset, clinic_b)
            assert not leaked, f"{type(form).__name__}.{name} offers clinic B's {leaked}"


# --- 1. Changelists: rows, filters, search -------------------------------------------------
@_pairs(MODELS)
def test_changelist_hides_other_clinics_rows(model, pair, clinic_b, world_b, client_a):
    row_a, row_b = pair

    response = client_a.get(_url(model, "changelist"))

    assert response.status_code == 200
    listed = {obj.pk for obj in response.context["cl"].result_list}
    assert row_a.pk in listed  # the list works …
    assert row_b.pk not in listed  # … and holds nothing of clinic B
    assert not world_b.shown_in(response.content)
    for spec in response.context["cl"].filter_specs:
        field = getattr(spec, "field", None)
        choices = getattr(spec, "lookup_choices", None)
        if field is None or not field.is_relation or not choices:
            continue
        offered = field.related_model._base_manager.filter(pk__in=[pk for pk, _ in choices])
        leaked = _b_rows_in(offered, clinic_b)
        assert not leaked, f"the {field.name} filter offers clinic B's {leaked}"


def _search_value(model_admin, obj) -> tuple[str, str] | None:
    """(search field, a value of ``obj`` that the admin's search finds it by)."""
    for lookup in model_admin.search_fields:
        path = lookup.lstrip("^=@")
        value = obj
        for part in path.split("__"):
            value = getattr(value, part, None)
            if value is None:
                break
        if value not in (None, ""):
            return lookup, str(value)
    return None


SEARCHABLE = [m for m in MODELS if admin.site._registry[m].search_fields]


@_pairs(SEARCHABLE)
def test_search_does_not_find_other_clinics_rows(model, pair, member_a, clinic_b, client_a):
    _row_a, row_b = pair
    model_admin = admin.site._registry[model]
    found = _search_value(model_admin, row_b)
    assert found, f"{_id(model)}: B's row has no value in {model_admin.search_fields}"
    _lookup, term = found
    request = RequestFactory().get("/")
    request.user = member_a
    request._cuidar_clinic = clinic_b  # searching as if in B: the term finds B's row there
    unscoped, _dup = model_admin.get_search_results(request, model._base_manager.all(), term)
    assert unscoped.filter(pk=row_b.pk).exists()

    response = client_a.get(_url(model, "changelist"), {"q": term})

    assert response.status_code == 200
    assert row_b.pk not in {obj.pk for obj in response.context["cl"].result_list}


# --- 2. Change, delete and history views of B's row ----------------------------------------
@_pairs(MODELS)
def test_object_views_answer_404_for_other_clinics_row(model, pair, clinic_a, clinic_b, client_a):
    _row_a, row_b = pair
    before_row, before = snapshot(row_b), footprint(clinic_b)
    before_a = footprint(clinic_a, ignore=LOGS - {"AuditEntry"})  # no read of B's recorded

    for view in ("change", "history", "delete"):
        url = _url(model, view, row_b.pk)
        shown = client_a.get(url)
        posted = client_a.post(url, {"post": "yes"})
        # A view closed to this user for every row (403 before the row is looked up, as for
        # a policy nobody deletes) says nothing about B's row; only then is 403 accepted.
        for method, response in (("GET", shown), ("POST", posted)):
            allowed = (302, 404)
            if (
                response.status_code == 403
                and _closed_for_every_row(model, view, client_a, _row_a)[method]
            ):
                allowed = (403,)
            assert response.status_code in allowed, f"{url}: {response.status_code}"
            assert str(row_b) not in response.content.decode()
    assert snapshot(row_b) == before_row
    assert footprint(clinic_b) == before
    assert footprint(clinic_a, ignore=LOGS - {"AuditEntry"}) == before_a


def _closed_for_every_row(model, view, client, row) -> dict[str, bool]:
    """Whether ``view`` answers 403 for the user's own clinic's row too (GET, POST). The POST
    is a plain one that confirms nothing (no "post" field), so it changes no own row."""
    url = _url(model, view, row.pk)
    return {
        "GET": client.get(url).status_code == 403,
        "POST": client.post(url, {}).status_code == 403,
    }


# --- 3. Admin actions given B's id ---------------------------------------------------------
ACTIONS = [
    (model, name)
    for model in MODELS
    for _func, name, _desc in admin.site._registry[model]._get_base_actions()
]


@pytest.mark.parametrize(
    "model,pair,action",
    [(m, _id(m), a) for m, a in ACTIONS],
    ids=[f"{_id(m)}-{a}" for m, a in ACTIONS],
    indirect=["pair"],
)
def test_actions_change_nothing_of_other_clinics_rows(model, pair, action, clinic_b, client_a):
    _row_a, row_b = pair
    before_row, before = snapshot(row_b), footprint(clinic_b)

    response = client_a.post(
        _url(model, "changelist"),
        {"action": action, "_selected_action": [row_b.pk], "index": 0, "post": "yes"},
    )

    assert response.status_code in (200, 302)
    assert snapshot(row_b) == before_row
    assert footprint(clinic_b) == before


# --- 4. Foreign-key choices in add/change forms, and a POST naming B's rows ----------------
@_pairs(MODELS)
def test_forms_offer_and_accept_no_other_clinics_rows(model, pair, clinic_b, world_b, client_a):
    row_a, _row_b = pair
    url = _url(model, "add")
    shown = client_a.get(url)
    if shown.status_code in (302, 403):  # added elsewhere (PAGES) or not at all: A's row
        url = _url(model, "change", row_a.pk)
        shown = client_a.get(url)
    if shown.status_code != 200:
        pytest.fail(f"{_id(model)}: {url} answered {shown.status_code}")
    assert_choices_scoped(shown.context, clinic_b)

    form = shown.context["adminform"].form if "adminform" in shown.context else None
    references = {}
    for name, field in (_model_choice_fields(form) if form else {}).items():
        target = _b_row_of(field.queryset.model, world_b)
        if target is not None:
            multiple = isinstance(field, forms.ModelMultipleChoiceField)
            references[name] = [target.pk] if multiple else target.pk
    if not references:
        return  # nothing on this form points at another clinic's kind of row
    before_row, before = snapshot(row_a), footprint(clinic_b)

    posted = client_a.post(url, references)

    assert posted.status_code == 200  # the form again, with its errors
    errors = posted.context["adminform"].form.errors
    for name in references:
        assert name in errors, f"{_id(model)}.{name} accepted clinic B's row"
    assert snapshot(row_a) == before_row
    assert footprint(clinic_b) == before


def _b_row_of(model, world_b):
    row = world_b.of(model)
    if row is not None or not clinic_owned(model):
        return row
    return model._base_manager.filter(clinic=world_b.clinic).first()


# --- 5. Autocomplete -----------------------------------------------------------------------
AUTOCOMPLETES = [
    (model, name)
    for model in MODELS
    for name in (
        *admin.site._registry[model].autocomplete_fields,
        *(
            name
            for inline in admin.site._registry[model].inlines
            for name in getattr(inline, "autocomplete_fields", ())
        ),
    )
]


@pytest.mark.parametrize(
    "model,field_name", AUTOCOMPLETES, ids=[f"{_id(m)}.{f}" for m, f in AUTOCOMPLETES]
)
def test_autocomplete_does_not_offer_other_clinics_rows(
    model, field_name, world_a, world_b, client_a
):
    target_model = model._meta.get_field(field_name).related_model
    target_admin = admin.site._registry[target_model]
    ours, theirs = world_a.of(target_model), world_b.of(target_model)
    _lookup, term = _search_value(target_admin, theirs)
    query = {
        "app_label": model._meta.app_label,
        "model_name": model._meta.model_name,
        "field_name": field_name,
    }

    found = client_a.get(reverse("admin:autocomplete"), {**query, "term": term})
    own = client_a.get(reverse("admin:autocomplete"), {**query, "term": ""})

    assert found.status_code == own.status_code == 200
    assert str(theirs.pk) not in {r["id"] for r in found.json()["results"]}
    assert str(ours.pk) in {r["id"] for r in own.json()["results"]}


# --- 6. The admin's own views that take an object id ---------------------------------------
#: Other URL arguments of object views (an action's name …): each set is tried.
OBJECT_VIEW_KWARGS = {
    "Appointment.transition": [
        {"action": action}
        for action in ("confirm", "check_in", "start", "complete", "no_show", "cancel")
    ],
    "Payment.do": [
        {"action": action} for action in ("confirm", "charge_again", "cancel", "static_pix")
    ],
}


def _paid_payment(clinic):
    return PaymentFactory(clinic=clinic, status="paid", paid_at=timezone.now())


def _issued_invoice(clinic):
    return InvoiceFactory(payment=_paid_payment(clinic), status="issued", number="123", errors=[])


#: Rows a view acts on only in some state (a receipt of a paid payment …): both clinics'
#: rows are made so, so that the 404 for B's comes from whose row it is.
OBJECT_VIEW_ROWS = {
    # The patient's message timeline lives in messaging's admin but takes the patient's id.
    "OutboundMessage.patient_messages": lambda clinic: make("Patient", clinic),
    "Payment.receipt": _paid_payment,
    "Payment.receipt_send": _paid_payment,
    "Payment.refund": _paid_payment,
    "Invoice.cancel": _issued_invoice,
    # The clinical record's pages take the patient, an entry or an attachment.
    "Encounter.patient": lambda clinic: make("Patient", clinic),
    "Encounter.walk_in": lambda clinic: make("Patient", clinic),
    "Encounter.break_glass": lambda clinic: make("Patient", clinic),
    "Encounter.correct": lambda clinic: make("Entry", clinic),
    "Encounter.inactivate": lambda clinic: make("Entry", clinic),
    "Encounter.attachment": lambda clinic: make("Attachment", clinic),
}

OBJECT_VIEWS = [v for v in custom_admin_views() if v.takes_object and v.owner in ROWS]


@pytest.mark.parametrize("view", OBJECT_VIEWS, ids=[v.key for v in OBJECT_VIEWS])
def test_custom_object_views_answer_404_for_other_clinics_row(view, clinic_a, clinic_b, client_a):
    make_row = OBJECT_VIEW_ROWS.get(view.key, lambda clinic: make(view.owner, clinic))
    row_a, row_b = make_row(clinic_a), make_row(clinic_b)
    pk_name = "pk" if "pk" in view.kwargs else "object_id"
    data = {"reason": "x", "amount": "1.00", "confirm": "1", "justification": "x" * 20}
    for extra in OBJECT_VIEW_KWARGS.get(view.key, [{}])[:1]:
        # The page works for A's row (so B's 404 below is about whose row it is).
        own = reverse(f"admin:{view.url_name}", kwargs={**extra, pk_name: row_a.pk})
        answers = (client_a.get(own).status_code, client_a.post(own, data).status_code)
        assert 404 not in answers, f"{own}: {answers}"
    before_row, before = snapshot(row_b), footprint(clinic_b)
    before_a = footprint(clinic_a, ignore=LOGS - {"AuditEntry"})  # no read of B's recorded

    for extra in OBJECT_VIEW_KWARGS.get(view.key, [{}]):
        kwargs = {**extra, pk_name: row_b.pk}
        url = reverse(f"admin:{view.url_name}", kwargs=kwargs)
        shown = client_a.get(url)
        posted = client_a.post(url, data)

        # A GET of a POST-only view is refused before any look-up (403/405).
        assert shown.status_code in (302, 403, 404, 405), f"{url}: {shown.status_code}"
        assert posted.status_code in (302, 404), f"{url}: {posted.status_code}"
        for response in (shown, posted):
            assert str(row_b) not in response.content.decode()
    assert snapshot(row_b) == before_row
    assert footprint(clinic_b) == before
    assert footprint(clinic_a, ignore=LOGS - {"AuditEntry"}) == before_a


# --- 7. The admin's own pages that take ids in the query or the form -----------------------
def _day(world):
    return timezone.localtime(world.appointment.start).date().isoformat()


#: How each page of the admin without an object in its path is given clinic B's ids:
#: ``get``: query parameters, ``post``: form fields (each a function of B's world),
#: ``kwargs``: other URL arguments; ``status``: the answer expected to the GET (when the page
#: looks the ids of its query up itself rather than offering them as choices).
PAGES = {
    # The reception calendar (issue 21): its page, JSON, patient search, free times, booking,
    # and the card's move and status buttons given B's appointment in the path.
    "site.scheduling_calendar": {
        "get": lambda b: {"date": _day(b), "professional": b.professional.pk}
    },
    "site.scheduling_calendar_events": {
        "get": lambda b: {
            "start": _day(b),
            "professional": b.professional.pk,
            "by": "professional",
        },
    },
    "site.scheduling_calendar_patients": {"get": lambda b: {"q": B_MARK}},
    "site.scheduling_calendar_times": {
        "get": lambda b: {"professional": b.professional.pk, "service": b.service.pk},
    },
    "site.scheduling_calendar_book": {
        "post": lambda b: {
            "patient": b.patient.pk,
            "professional": b.professional.pk,
            "service": b.service.pk,
            "start": f"{_day(b)}T15:00",
        },
    },
    "site.scheduling_calendar_move": {
        "kwargs_of": lambda b: {"object_id": b.appointment.pk},
        "get": lambda b: {},
        "status": 405,
        "post": lambda b: {"start": f"{_day(b)}T16:00"},
    },
    "site.scheduling_calendar_status": {
        "kwargs_of": lambda b: {"object_id": b.appointment.pk, "action": "confirm"},
        "post": lambda b: {"reason": "x"},
    },
    "Appointment.agenda": {
        "get": lambda b: {"date": _day(b), "professional": b.professional.pk},
    },
    "Appointment.agenda_week": {
        "get": lambda b: {"date": _day(b), "professional": b.professional.pk},
    },
    "Appointment.checkin": {
        "get": lambda b: {"q": B_MARK},
        "post": lambda b: {"q": B_MARK, "appointment": b.appointment.pk},
    },
    "FinancialTransaction.reconciliation": {"get": lambda b: {}},
    "FinancialTransaction.reports": {"get": lambda b: {}},
    "FinancialTransaction.reports_export": {
        "get": lambda b: {},
        "kwargs": {"name": "professional", "fmt": "csv"},
    },
    "PatientPackage.sell": {
        "get": lambda b: {"patient": b.patient.pk, "package": b.package.pk},
        "status": 404,
        "post": lambda b: {"patient": b.patient.pk, "package": b.package.pk, "mode": "receive"},
    },
    "Payment.register": {
        "get": lambda b: {"patient": b.patient.pk, "appointment": b.appointment.pk},
        "status": 404,
        "post": lambda b: {
            "patient": b.patient.pk,
            "appointment": b.appointment.pk,
            "amount": "10.00",
            "method": "cash",
        },
    },
    "site.scheduling_series": {
        "get": lambda b: {
            "patient": b.patient.pk,
            "professional": b.professional.pk,
            "service": b.service.pk,
        },
        "post": lambda b: {
            "patient": b.patient.pk,
            "professional": b.professional.pk,
            "service": b.service.pk,
            "room": b.room.pk,
            "start": _day(b) + " 10:00",
            "_confirm": "1",
        },
    },
    # The CRM's funnel board (filters by B's owner change nothing) and attribution report.
    "Lead.board": {"get": lambda b: {"owner": b.patient.pk, "source": "website"}},
    "MarketingSpend.attribution": {"get": lambda b: {"touch": "last"}},
    "site.index": {"get": lambda b: {}},
    "site.app_list": {"get": lambda b: {}, "each_app": True},
    "site.switch_clinic": {"post": lambda b: {"clinic": b.clinic.pk, "next": "/admin/"}},
    "site.view_on_site": {"get": lambda b: {}, "view_on_site": True},
    # The professional's day: the signed-in professional's own appointments only; starting
    # one takes the appointment's id in the path.
    "site.scheduling_my_day": {"get": lambda b: {}},
    "site.scheduling_my_day_start": {
        "kwargs_of": lambda b: {"object_id": b.appointment.pk},
        "get": lambda b: {},
        "status": 405,
        "post": lambda b: {},
    },
}

#: Admin views that show no clinic's rows, and why.
NO_CLINIC_DATA = {
    "site.login": "the sign-in form",
    "site.logout": "signs out",
    "site.password_change": "the user's own password",
    "site.password_change_done": "a confirmation",
    "site.jsi18n": "the translation catalogue",
    "site.autocomplete": "walked by test_autocomplete_does_not_offer_other_clinics_rows",
    "MessageTemplate.preview": "renders the posted text with sample data; reads no stored row",
    "User.password_change": "staff accounts are the operator's (GLOBAL_ADMIN_MODELS)",
    "BackupRun.run": "starts a backup or a drill of the whole installation: superusers only",
    "TOTPDevice.config": "django-otp's device pages: a global model (walk.GLOBAL_ADMIN_MODELS)",
    "TOTPDevice.qrcode": "django-otp's device pages: a global model (walk.GLOBAL_ADMIN_MODELS)",
    "Cid10Code.search": "CID-10 search for the diagnosis widget: global reference data "
    "(tests/records/test_cid10.py checks it is for clinical roles only)",
}

PAGE_VIEWS = [v for v in custom_admin_views() if v.key in PAGES]


def _page_urls(view, world_b) -> list[str]:
    spec = PAGES[view.key]
    if spec.get("each_app"):
        labels = sorted({m._meta.app_label for m in admin.site._registry})
        return [reverse(f"admin:{view.url_name}", kwargs={"app_label": label}) for label in labels]
    if spec.get("view_on_site"):
        return [
            reverse(
                f"admin:{view.url_name}",
                kwargs={
                    "content_type_id": ContentType.objects.get_for_model(row).pk,
                    "object_id": row.pk,
                },
            )
            for row in (world_b.patient, world_b.appointment, world_b.payment)
        ]
    if "kwargs_of" in spec:
        return [reverse(f"admin:{view.url_name}", kwargs=spec["kwargs_of"](world_b))]
    return [reverse(f"admin:{view.url_name}", kwargs=spec.get("kwargs", {}))]


@pytest.mark.parametrize("view", PAGE_VIEWS, ids=[v.key for v in PAGE_VIEWS])
def test_admin_pages_ignore_other_clinics_ids(view, clinic_a, clinic_b, world_a, world_b, client_a):
    spec = PAGES[view.key]
    watched = (world_b.appointment, world_b.payment, world_b.patient)
    before_rows, before = [snapshot(r) for r in watched], footprint(clinic_b)
    before_a = footprint(clinic_a, ignore=LOGS)  # nor written in A with B's rows

    for url in _page_urls(view, world_b):
        if "get" in spec:
            response = client_a.get(url, spec["get"](world_b))
            expected = (spec["status"],) if "status" in spec else (200, 302, 404)
            assert response.status_code in expected, f"{url}: {response.status_code}"
            if response.status_code == 302:
                assert "/admin/" in response["Location"] or response["Location"].startswith("/")
            assert not world_b.shown_in(response.content), url
            assert_choices_scoped(response.context, clinic_b)
        if "post" in spec:
            response = client_a.post(url, spec["post"](world_b))
            expected = (200, 302, 400, 403, 404)
            assert response.status_code in expected, f"{url}: {response.status_code}"
            assert not world_b.shown_in(response.content), url

    assert [snapshot(r) for r in watched] == before_rows
    assert footprint(clinic_b) == before
    assert footprint(clinic_a, ignore=LOGS) == before_a
    # Still working in clinic A (the switcher refused B): A's patient is listed, B's not.
    listed = client_a.get(reverse(f"admin:{_patient_changelist()}"))
    assert {p.pk for p in listed.context["cl"].result_list} == {world_a.patient.pk}


def _patient_changelist() -> str:
    patient = next(m for m in MODELS if m._meta.object_name == "Patient")
    return f"{patient._meta.app_label}_{patient._meta.model_name}_changelist"


def test_view_on_site_never_leads_to_other_clinics_rows(clinic_b, client_a):
    """Kept apart from PAGES' generic check: a redirect must not name B's row either."""
    row_b = make("Appointment", clinic_b)
    url = reverse(
        "admin:view_on_site",
        kwargs={
            "content_type_id": ContentType.objects.get_for_model(row_b).pk,
            "object_id": row_b.pk,
        },
    )
    response = client_a.get(url)
    assert response.status_code == 404 or str(row_b.pk) not in response.get("Location", "")


def test_clinic_of_rows_is_what_the_suite_expects(clinic_b):
    """The registry makes B's rows in B (a guard for the registry itself)."""
    for model in MODELS:
        assert clinic_of(make(_id(model), clinic_b)) == clinic_b.pk, _id(model)


# --- 8. Staff pages outside the admin that take an object id -------------------------------
#: URL name → the model of the object in its path (by class name).
STAFF_OBJECT_URLS = {"scheduling:appointment_ics": "Appointment"}


@pytest.mark.parametrize("name", sorted(STAFF_OBJECT_URLS))
def test_staff_object_urls_answer_404_for_other_clinics_rows(name, clinic_a, clinic_b, client_a):
    row_a = make(STAFF_OBJECT_URLS[name], clinic_a)
    row_b = make(STAFF_OBJECT_URLS[name], clinic_b)

    own = client_a.get(reverse(name, kwargs={"pk": row_a.pk}))
    theirs = client_a.get(reverse(name, kwargs={"pk": row_b.pk}))

    assert own.status_code == 200
    assert theirs.status_code == 404
