"""What the tenancy suite walks, discovered from the admin site and the URL resolver (never
from hard-coded admin URL names: app labels change as clinic splits into sub-apps).

Each walk yields plain descriptions used to parametrise the tests; the specs that say how to
exercise a view live beside the tests (``SPECS`` dictionaries), and ``test_coverage.py`` fails
when something is registered that no spec covers.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.contrib import admin
from django.urls import URLPattern, URLResolver, get_resolver

#: The views every ModelAdmin has (walked by the generic tests of test_admin.py).
STANDARD_ADMIN_VIEWS = ("changelist", "add", "history", "delete", "change")

#: Models in the admin that are no clinic's data, and why no clinic member can open them.
#: test_coverage.py checks that no role grants any permission on them.
GLOBAL_ADMIN_MODELS = {
    "User": "staff accounts: the operator's (superuser's) alone",
    "Group": "the role groups themselves: defined in code (clinic/roles.py)",
    "PeriodicTask": "Celery beat's schedule: one for the installation, operator only",
    "ClockedSchedule": "Celery beat's schedule: one for the installation, operator only",
    "CrontabSchedule": "Celery beat's schedule: one for the installation, operator only",
    "IntervalSchedule": "Celery beat's schedule: one for the installation, operator only",
    "SolarSchedule": "Celery beat's schedule: one for the installation, operator only",
    "BackupRun": "backups and drills copy every clinic at once: superusers only",
    "TOTPDevice": "second-factor devices (django-otp's admin): the operator's; each user "
    "manages their own on /account/, an administrator resets them there",
    "StaticDevice": "recovery codes (django-otp's admin): as TOTPDevice",
    "Cid10Code": "CID-10 (DATASUS): reference data of every clinic, read-only; clinicians "
    "reach it through its search (Cid10Code.search), not the changelist",
}


#: Models whose rows belong to a staff user, not to a clinic row: their admins show a clinic
#: administrator the rows of the clinic's members only. The generic walk needs a ``clinic``
#: foreign key, so each names the test that checks this scoping instead.
MEMBER_SCOPED_ADMIN_MODELS = {
    "StaffSession": "tests/clinic/accounts/test_admin.py::"
    "test_the_trail_and_sessions_show_only_the_clinics_members",
    "SecurityEvent": "tests/clinic/accounts/test_admin.py::"
    "test_the_trail_and_sessions_show_only_the_clinics_members",
    "AccessAttempt": "tests/clinic/accounts/test_admin.py::"
    "test_the_trail_and_sessions_show_only_the_clinics_members",
}


def admin_models() -> list:
    """Every model registered on the admin site, sorted by class name."""
    return sorted(admin.site._registry, key=lambda m: m._meta.object_name)


def tenant_admin_models() -> list:
    return [
        m
        for m in admin_models()
        if m._meta.object_name not in GLOBAL_ADMIN_MODELS
        and m._meta.object_name not in MEMBER_SCOPED_ADMIN_MODELS
    ]


@dataclass(frozen=True)
class AdminView:
    """A view of the admin beyond the standard ones: ``owner`` is the class name of the
    ModelAdmin's model (``"site"`` for the admin site's own views), ``name`` the URL name
    without its app/model prefix, ``kwargs`` the URL's arguments."""

    owner: str
    name: str
    url_name: str
    kwargs: tuple[str, ...] = field(default=())

    @property
    def key(self) -> str:
        return f"{self.owner}.{self.name}"

    @property
    def takes_object(self) -> bool:
        return bool({"pk", "object_id"} & set(self.kwargs))


def _kwargs(pattern) -> tuple[str, ...]:
    return tuple(sorted(pattern.pattern.regex.groupindex))


def _short_name(url_name: str, model=None) -> str:
    if model is not None:
        for prefix in (
            f"{model._meta.app_label}_{model._meta.model_name}_",
            f"{model._meta.app_label}_",
        ):
            if url_name.startswith(prefix):
                return url_name[len(prefix) :]
    return url_name


def custom_admin_views() -> list[AdminView]:
    """The admin's own views: those each ModelAdmin adds in ``get_urls()`` beside the
    standard five, and those the site adds (the clinic switcher, the series page …)."""
    views = []
    model_url_names = set()
    for model, model_admin in admin.site._registry.items():
        for pattern in model_admin.get_urls():
            if not isinstance(pattern, URLPattern) or not pattern.name:
                continue
            model_url_names.add(pattern.name)
            short = _short_name(pattern.name, model)
            if short in STANDARD_ADMIN_VIEWS:
                continue
            views.append(AdminView(model._meta.object_name, short, pattern.name, _kwargs(pattern)))
    for pattern in admin.site.get_urls():
        if isinstance(pattern, URLPattern) and pattern.name and pattern.name not in model_url_names:
            views.append(AdminView("site", pattern.name, pattern.name, _kwargs(pattern)))
    return sorted(views, key=lambda v: v.key)


def all_url_patterns(patterns=None, prefix: str = "", namespace: str = ""):
    """Every URL pattern of the project: (route, full name, pattern)."""
    if patterns is None:
        patterns = get_resolver().url_patterns
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            ns = f"{namespace}{pattern.namespace}:" if pattern.namespace else namespace
            yield from all_url_patterns(pattern.url_patterns, prefix + str(pattern.pattern), ns)
        else:
            name = f"{namespace}{pattern.name}" if pattern.name else ""
            yield prefix + str(pattern.pattern), name, pattern
