"""Loyalty in the admin: the clinic's programme (managers), the rewards catalogue, each
patient's account with its ledger — where the desk redeems a reward for the patient (a
voucher to type at the payment desk) and a manager adjusts points with a reason — the
ledger itself (read-only: it is append-only), vouchers and referrals."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from clinic.admin.base import ClinicScopedAdmin, ReadOnlyScopedAdmin, search_by_patient
from clinic.kernel.tenancy import current_clinic

from . import selectors, services
from .choices import RedemptionChannel, RedemptionStatus
from .exceptions import LoyaltyError
from .models import LoyaltyAccount, LoyaltyProgram, PointsEntry, Redemption, Referral, Reward

#: Who may adjust points by hand: managers and clinic administrators (clinic/roles.py).
ADJUST_PERMISSION = "loyalty.add_pointsentry"
REDEEM_PERMISSION = "loyalty.add_redemption"


@admin.register(LoyaltyProgram)
class LoyaltyProgramAdmin(ClinicScopedAdmin):
    list_display = ("__str__", "is_active", "medical_mode", "points_per_real", "expiry_months")
    fieldsets = (
        (None, {"fields": ("clinic", "is_active", "medical_mode")}),
        (
            _("Earning rules"),
            {
                "fields": (
                    "points_per_real",
                    "attended_visit_points",
                    "confirm_ahead_points",
                    "referral_points",
                    "referred_points",
                    "survey_points",
                    "birthday_points",
                )
            },
        ),
        (_("Expiry"), {"fields": ("expiry_months", "expiry_notice_days")}),
        (
            _("Tiers"),
            {"fields": ("silver_points", "gold_points", "platinum_points", "tier_benefits")},
        ),
        (_("Referrals"), {"fields": ("referral_monthly_limit",)}),
    )

    def has_add_permission(self, request):
        clinic = current_clinic(request)
        if clinic is not None and LoyaltyProgram.objects.filter(clinic=clinic).exists():
            return False  # one programme per clinic
        return super().has_add_permission(request)

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Reward)
class RewardAdmin(ClinicScopedAdmin):
    list_display = ("name", "reward_type", "points_cost", "value", "stock", "is_active")
    list_filter = ("reward_type", "is_active")
    search_fields = ("name",)
    fields = (
        "clinic",
        "name",
        "description",
        "reward_type",
        "points_cost",
        "value",
        "stock",
        "is_active",
    )


class EntryInline(admin.TabularInline):
    model = PointsEntry
    fk_name = "account"
    fields = ("created_at", "kind", "points", "reason", "expires_at", "created_by")
    readonly_fields = fields
    extra = 0
    max_num = 0
    can_delete = False
    ordering = ("-created_at", "-pk")
    verbose_name_plural = _("ledger (latest first)")

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("created_by")

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


class AdjustForm(forms.Form):
    points = forms.IntegerField(
        label=_("Points"), help_text=_("Positive to add, negative to take away.")
    )
    reason = forms.CharField(label=_("Reason"), max_length=255)

    def clean_points(self):
        points = self.cleaned_data["points"]
        if points == 0:
            raise forms.ValidationError(gettext("Not zero."))
        return points


class RedeemForm(forms.Form):
    reward = forms.ModelChoiceField(label=_("Reward"), queryset=Reward.objects.none())

    def __init__(self, *args, rewards, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["reward"].queryset = rewards


@admin.register(LoyaltyAccount)
class LoyaltyAccountAdmin(ClinicScopedAdmin):
    list_display = ("patient", "balance", "tier", "earned_12m", "referral_code")
    list_filter = ("tier",)
    list_select_related = ("patient",)
    search_fields = ("patient__full_name",)
    readonly_fields = (
        "patient",
        "balance",
        "tier",
        "earned_12m",
        "tier_evaluated_at",
        "referral_code",
        "tools",
    )
    fields = readonly_fields
    inlines = [EntryInline]

    def get_search_results(self, request, queryset, search_term):
        return search_by_patient(request, queryset, search_term)

    def has_add_permission(self, request):
        return False  # an account opens with the patient's first points

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description=_("Actions"))
    def tools(self, obj):
        links = []
        if obj.pk:
            links.append(
                (
                    reverse("admin:loyalty_loyaltyaccount_redeem", args=[obj.pk]),
                    gettext("Redeem a reward"),
                )
            )
            links.append(
                (
                    reverse("admin:loyalty_loyaltyaccount_adjust", args=[obj.pk]),
                    gettext("Adjust points"),
                )
            )
        return format_html(
            " ".join('<a class="button" href="{}">{}</a>' for _ in links),
            *[part for link in links for part in link],
        )

    def get_urls(self):
        view = self.admin_site.admin_view
        return [
            path("<int:pk>/adjust/", view(self.adjust_view), name="loyalty_loyaltyaccount_adjust"),
            path("<int:pk>/redeem/", view(self.redeem_view), name="loyalty_loyaltyaccount_redeem"),
            *super().get_urls(),
        ]

    def _account(self, request, pk) -> LoyaltyAccount:
        account = self.get_queryset(request).select_related("patient").filter(pk=pk).first()
        if account is None:
            raise Http404
        return account

    def _page(self, request, account, form, title, submit_label):
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": title,
            "account": account,
            "form": form,
            "submit_label": submit_label,
        }
        return TemplateResponse(request, "loyalty/admin/form.html", context)

    def adjust_view(self, request, pk):
        """A manager's correction: points and a reason, audited."""
        if not request.user.has_perm(ADJUST_PERMISSION):
            raise PermissionDenied
        account = self._account(request, pk)
        form = AdjustForm(request.POST if request.method == "POST" else None)
        if request.method == "POST" and form.is_valid():
            try:
                services.points_adjust(
                    account=account,
                    points=form.cleaned_data["points"],
                    reason=form.cleaned_data["reason"],
                    by=request.user,
                    request=request,
                )
            except LoyaltyError as exc:
                form.add_error(None, exc.message)
            else:
                messages.success(request, gettext("Points adjusted."))
                return HttpResponseRedirect(
                    reverse("admin:loyalty_loyaltyaccount_change", args=[account.pk])
                )
        return self._page(request, account, form, gettext("Adjust points"), gettext("Adjust"))

    def redeem_view(self, request, pk):
        """The desk redeems a reward for the patient: the voucher code to type at the
        payment desk ("Voucher code" on the payment)."""
        if not request.user.has_perm(REDEEM_PERMISSION):
            raise PermissionDenied
        account = self._account(request, pk)
        program = services.program_for(account.clinic_id)
        form = RedeemForm(
            request.POST if request.method == "POST" else None,
            rewards=selectors.rewards_offered(clinic=account.clinic_id, program=program),
        )
        if request.method == "POST" and form.is_valid():
            try:
                redemption = services.reward_redeem(
                    account=account,
                    reward=form.cleaned_data["reward"],
                    channel=RedemptionChannel.DESK,
                    by=request.user,
                )
            except LoyaltyError as exc:
                form.add_error(None, exc.message)
            else:
                messages.success(
                    request,
                    gettext("Voucher %(code)s issued: type it in “Voucher code” on the payment.")
                    % {"code": redemption.code},
                )
                return HttpResponseRedirect(
                    reverse("admin:loyalty_loyaltyaccount_change", args=[account.pk])
                )
        return self._page(request, account, form, gettext("Redeem a reward"), gettext("Redeem"))


@admin.register(PointsEntry)
class PointsEntryAdmin(ReadOnlyScopedAdmin):
    list_display = ("created_at", "account", "kind", "points", "reason", "expires_at")
    list_filter = ("kind",)
    list_select_related = ("account__patient",)
    date_hierarchy = "created_at"

    search_fields = ("reason", "account__referral_code")


@admin.register(Redemption)
class RedemptionAdmin(ReadOnlyScopedAdmin):
    list_display = (
        "code",
        "account",
        "reward",
        "points",
        "value",
        "status",
        "channel",
        "created_at",
    )
    list_filter = ("status", "channel")
    list_select_related = ("account__patient", "reward")
    search_fields = ("code",)
    actions = ["cancel_vouchers"]

    @admin.action(description=_("Cancel unused vouchers (points back)"), permissions=["cancel"])
    def cancel_vouchers(self, request, queryset):
        done = 0
        for redemption in queryset.filter(status=RedemptionStatus.ISSUED):
            services.redemption_cancel(redemption=redemption, by=request.user)
            done += 1
        messages.success(request, gettext("%(count)s vouchers cancelled.") % {"count": done})

    def has_cancel_permission(self, request):
        return request.user.has_perm("loyalty.change_redemption")


@admin.register(Referral)
class ReferralAdmin(ReadOnlyScopedAdmin):
    list_display = (
        "referrer",
        "referred_patient",
        "lead_id",
        "status",
        "refusal_reason",
        "created_at",
    )
    list_filter = ("status",)
    list_select_related = ("referrer__patient", "referred_patient")
