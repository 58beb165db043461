"""Cuidar's admin site: branding, the clinic switcher and the dashboard index."""

from django.contrib import admin, messages
from django.http import HttpResponseNotAllowed, HttpResponseRedirect
from django.urls import path, reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from clinic.kernel import tenancy


class CuidarAdminSite(admin.AdminSite):
    site_header = gettext_lazy("Cuidar")
    site_title = gettext_lazy("Cuidar")
    index_title = gettext_lazy("Dashboard")
    index_template = "admin/cuidar_index.html"
    enable_nav_sidebar = True

    def get_urls(self):
        from scheduling.admin.calendar import calendar_urls
        from scheduling.admin.my_day import my_day_urls
        from scheduling.admin.series import series_urls

        return [
            path("switch-clinic/", self.admin_view(self.switch_clinic), name="switch_clinic"),
            # Before the admin's own patterns, whose catch-all would swallow them.
            *series_urls(self),
            *calendar_urls(self),
            *my_day_urls(self),
            *super().get_urls(),
        ]

    def each_context(self, request):
        context = super().each_context(request)
        if (
            getattr(request, "user", None) is not None
            and request.user.is_active
            and (request.user.is_staff)
        ):
            context["cuidar_clinics"] = tenancy.available_clinics(request)
            context["cuidar_current_clinic"] = tenancy.current_clinic(request)
            context["cuidar_all_clinics"] = tenancy.ALL_CLINICS
        return context

    def switch_clinic(self, request):
        """POST clinic=<id> (or "all" for a superuser): work in that clinic from now on."""
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        try:
            clinic = tenancy.clinic_switch(request, request.POST.get("clinic"))
        except PermissionError:
            messages.error(request, _("You are not a member of that clinic."))
        else:
            name = clinic.name if clinic else _("all clinics")
            messages.success(request, _("You are now working in %(clinic)s.") % {"clinic": name})
        next_url = request.POST.get("next") or ""
        if not url_has_allowed_host_and_scheme(
            next_url, allowed_hosts={request.get_host()}, require_https=request.is_secure()
        ):
            next_url = reverse("admin:index", current_app=self.name)
        return HttpResponseRedirect(next_url)

    def index(self, request, extra_context=None):
        from clinic.messaging.selectors import unanswered_count
        from clinic.selectors import clinic_dashboard
        from integrations.health import integrations_health

        clinic = tenancy.current_clinic(request)
        context = {"dashboard": clinic_dashboard(clinic=clinic)}
        if clinic is not None:
            context["dashboard"]["unanswered_messages"] = unanswered_count(clinic=clinic)
        if request.user.has_perm("integrations.view_deadletter"):
            # The integrations at a glance: same report as /health/integrations.
            clinic_ids = [clinic.pk] if clinic else None
            if clinic_ids is None and not request.user.is_superuser:
                clinic_ids = []
            context["integrations"] = integrations_health(clinic_ids=clinic_ids)
        if clinic is not None and request.user.has_perm("billing.view_payment"):
            from billing.selectors import billing_dashboard

            context["billing_dashboard"] = billing_dashboard(clinic=clinic)
        if clinic is not None:
            # A clinical role's first page is its day, one click away.
            from clinic.records.access import professional_of

            context["my_day"] = professional_of(request.user, clinic) is not None
        if clinic is not None and request.user.has_perm("scheduling.view_appointment"):
            # The reception's first page leads with today; the model list goes below.
            from scheduling.admin.reception import reception_today

            context["desk"] = reception_today(clinic=clinic)
            if request.user.has_perm("billing.view_payment"):
                context["charges_due_today"] = _charges_due_today(clinic)
        return super().index(request, {**context, **(extra_context or {})})


def _charges_due_today(clinic) -> int:
    """Charges still open that fall due today, in the clinic's time zone (one query)."""
    from billing.models import Payment
    from billing.selectors import OPEN
    from clinic.kernel.timezones import clinic_today

    return (
        Payment.objects.for_clinic(clinic)
        .filter(status__in=OPEN, due_date=clinic_today(clinic))
        .count()
    )
