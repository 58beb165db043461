"""The patient's points in the portal: balance, tier and the way to the next one, the
history, the rewards to redeem (a voucher code to show at the desk), and the referral link
with the status of each referral. Every read is scoped to ``request.portal.patient``."""

from __future__ import annotations

from django.contrib import messages
from django.core.paginator import Paginator
from django.shortcuts import redirect, render
from django.urls import path, reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from clinic.portal.sessions import portal_view
from clinic.privacy import export_section

from . import selectors, services
from .choices import RedemptionChannel
from .exceptions import LoyaltyError

HISTORY_PER_PAGE = 20


@portal_view
def points(request):
    """The page; a POST with ``reward`` redeems it (points out, a voucher code in, one
    transaction), then comes back here with the code."""
    portal = request.portal
    program = services.program_for(portal.clinic)
    account = services.account_for(portal.patient)
    if request.method == "POST":
        return _redeem(request, program, account)
    history = Paginator(selectors.account_history(account=account), HISTORY_PER_PAGE).get_page(
        request.GET.get("page")
    )
    link = request.build_absolute_uri(services.referral_link(account=account))
    share = services.referral_share_text(account=account, link=link)
    context = {
        "nav": "points",
        "program": program,
        "account": account,
        "progress": services.tier_progress(account=account, program=program),
        "history": history.object_list,
        "page": history,
        "rewards": list(selectors.rewards_offered(clinic=portal.clinic, program=program)),
        "vouchers": list(selectors.account_vouchers(account=account)[:20]),
        "referrals": list(selectors.account_referrals(account=account)[:50]),
        "referral_link": link,
        "whatsapp_url": services.whatsapp_share_url(share),
    }
    return render(request, "portal/loyalty/points.html", context)


def _redeem(request, program, account):
    offered = selectors.rewards_offered(clinic=request.portal.clinic, program=program)
    try:
        reward = offered.filter(pk=int(request.POST.get("reward", ""))).first()
    except ValueError:
        reward = None
    if reward is None:
        # Another clinic's reward, one no longer offered, or garbage: the same answer.
        messages.error(request, _("This reward is no longer offered."))
        return redirect("portal:points")
    try:
        redemption = services.reward_redeem(
            account=account, reward=reward, channel=RedemptionChannel.PORTAL
        )
    except LoyaltyError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(
            request,
            _("Your voucher for %(reward)s: %(code)s. Show this code at the desk.")
            % {"reward": reward.name, "code": redemption.code},
        )
    return redirect(reverse("portal:points") + "#vouchers")


urlpatterns = [path("pontos/", points, name="points")]


@export_section("loyalty", gettext_lazy("Loyalty points"), order=50)
def export_points(patient) -> dict:
    """The patient's account, every ledger entry, vouchers and referrals."""
    account = selectors.account_of(patient=patient)
    if account is None:
        return {}
    return {
        "balance": account.balance,
        "tier": account.tier,
        "referral_code": account.referral_code,
        "entries": [
            {
                "kind": e.kind,
                "points": e.points,
                "reason": e.reason,
                "created_at": e.created_at.isoformat(),
                "expires_at": e.expires_at.isoformat() if e.expires_at else None,
            }
            for e in selectors.account_history(account=account).order_by("created_at", "pk")
        ],
        "vouchers": [
            {"code": r.code, "reward": r.reward.name, "status": r.status}
            for r in selectors.account_vouchers(account=account)
        ],
    }
