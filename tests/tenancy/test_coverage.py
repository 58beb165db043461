"""The suite walks everything there is: a ModelAdmin, an admin page, an API endpoint or a
portal page registered without a way for the tenancy suite to walk it fails here, naming
it, so a new app cannot forget tenancy. What to do then: add the model to ``rows.ROWS``
(one factory), or the page to the spec dictionary named in the message."""

from __future__ import annotations

from clinic.roles import ROLE_PERMISSIONS

from . import test_admin, test_api, test_portal
from .rows import ROWS
from .walk import (
    GLOBAL_ADMIN_MODELS,
    MEMBER_SCOPED_ADMIN_MODELS,
    admin_models,
    all_url_patterns,
    custom_admin_views,
)


def test_every_admin_model_has_rows_or_is_declared_global():
    missing = [
        m._meta.label
        for m in admin_models()
        if m._meta.object_name not in ROWS
        and m._meta.object_name not in GLOBAL_ADMIN_MODELS
        and m._meta.object_name not in MEMBER_SCOPED_ADMIN_MODELS
    ]
    assert not missing, f"add to tests/tenancy/rows.py ROWS: {missing}"


def test_no_role_opens_a_global_model():
    """The models left out as "no clinic's data" are the operator's: no clinic role may
    even view them (a clinic member would see every clinic's rows there)."""
    granted = {perm for perms in ROLE_PERMISSIONS.values() for perm in perms}
    for model in admin_models():
        if model._meta.object_name in GLOBAL_ADMIN_MODELS:
            prefix = f"{model._meta.app_label}."
            suffix = f"_{model._meta.model_name}"
            leaked = sorted(p for p in granted if p.startswith(prefix) and p.endswith(suffix))
            assert not leaked, f"{model._meta.label} is global but roles grant {leaked}"


def test_every_admin_page_is_walked():
    unwalked = []
    for view in custom_admin_views():
        if view.key in test_admin.NO_CLINIC_DATA or view.key in test_admin.PAGES:
            continue
        if view.takes_object:
            others = set(view.kwargs) - {"pk", "object_id"}
            given = test_admin.OBJECT_VIEW_KWARGS.get(view.key, [{}])
            if view.owner in ROWS and all(others <= set(kwargs) for kwargs in given):
                continue
        unwalked.append(f"{view.key} (admin:{view.url_name}, arguments {view.kwargs})")
    assert not unwalked, (
        "admin pages the tenancy suite cannot walk; add them to test_admin.PAGES, "
        f"OBJECT_VIEW_KWARGS or NO_CLINIC_DATA: {unwalked}"
    )


def test_every_api_endpoint_is_walked():
    unwalked = []
    for name, (route, pattern) in test_api.ENDPOINTS.items():
        if name in test_api.NO_CLINIC_DATA or name in test_api.OTHER_VIEWS:
            continue
        basename = test_api._basename(name)
        methods = test_api._methods(pattern)
        if basename in test_api.RESOURCES:
            if test_api.RESOURCES[basename] not in ROWS:
                unwalked.append(f"{name}: {test_api.RESOURCES[basename]} not in rows.ROWS")
            if (
                name.endswith("-list")
                and "POST" in methods
                and not (
                    basename in test_api.WRITES or basename in test_api.WRITES_WITHOUT_REFERENCES
                )
            ):
                unwalked.append(f"POST {route}: not in test_api.WRITES")
            continue
        if methods == {"POST"} and basename in test_api.WRITES_WITHOUT_REFERENCES:
            continue
        unwalked.append(f"{name} ({route})")
    assert not unwalked, (
        "API endpoints the tenancy suite cannot walk; add them to test_api.RESOURCES, "
        f"WRITES, OTHER_VIEWS or NO_CLINIC_DATA: {unwalked}"
    )


def test_every_portal_page_is_walked():
    unwalked = []
    for name, kwargs in test_portal.portal_pages().items():
        if name in test_portal.NO_CLINIC_DATA:
            continue
        if kwargs:
            if name in test_portal.OBJECT_PAGES and kwargs == ("pk",):
                continue
        elif name in test_portal.PAGES:
            continue
        unwalked.append(f"{name} (arguments {kwargs})")
    assert not unwalked, (
        "portal pages the tenancy suite cannot walk; add them to test_portal.OBJECT_PAGES, "
        f"PAGES or NO_CLINIC_DATA: {unwalked}"
    )


#: Pages outside the admin, the API and the portal that take a secret token, not an id: a
#: token names one row of one clinic and cannot be guessed or enumerated.
TOKEN_URLS = {
    "scheduling:calendar_feed": "the feed's own token",
    "scheduling:appointment_link": "a signed appointment token from a reminder",
    "scheduling:offer_claim": "the waitlist offer's own token",
    "webhooks:receive": "the provider account's webhook token",
    "webhooks:receive-subpath": "the provider account's webhook token",
    "accounts:invitation": "the invitation's own one-time token",
    # The public lead form: the clinic's own form key (tests/crm/test_lead_form.py).
    "crm:lead-form": "the clinic's lead-form key (MarketingSettings.form_key)",
    "accounts:password_reset_confirm": "Django's single-use password reset token",
    # The signed-in user's own rows, not a clinic's: another person's id is a 404
    # (tests/clinic/accounts/test_sign_in.py::
    # test_nobody_ends_another_persons_session_or_removes_their_device).
    "accounts:session_end": "the user's own session",
    "accounts:device_remove": "the user's own second-factor device",
}


def test_every_other_url_with_an_argument_is_walked():
    unwalked = []
    for route, name, pattern in all_url_patterns():
        if route.startswith(("admin/", "api/", "portal/")) or not pattern.pattern.regex.groupindex:
            continue
        if name in TOKEN_URLS or name in test_admin.STAFF_OBJECT_URLS:
            continue
        if name.startswith("anymail:"):
            continue  # anymail's ESP webhooks (HTTP basic auth, no clinic id)
        unwalked.append(f"{name or '?'} ({route})")
    assert not unwalked, (
        "URLs with an argument the tenancy suite cannot walk; add them to "
        f"test_admin.STAFF_OBJECT_URLS or TOKEN_URLS: {unwalked}"
    )
