"""Demo data of loyalty, found by ``manage.py seed_demo``: the programme switched on (medical
mode, discounts only), three discount rewards, and the points of the demo's paid payments
(what the ``payment.received`` handler would have credited). Idempotent."""

from decimal import Decimal

from billing.choices import PaymentStatus
from billing.models import Payment

from . import services
from .models import Reward

REWARDS = [
    # name, points, value (R$), stock
    ("R$ 20 de desconto", 200, "20.00", None),
    ("R$ 50 de desconto", 450, "50.00", None),
    ("R$ 100 de desconto na próxima sessão", 850, "100.00", 20),
]


def seed_demo(*, clinics, rng, stdout) -> None:
    for clinic in clinics:
        if Reward.objects.for_clinic(clinic).exists():
            continue
        program = services.program_for(clinic)
        program.is_active = True
        program.save(update_fields=["is_active", "updated_at"])
        for name, points, value, stock in REWARDS:
            Reward.objects.create(
                clinic=clinic, name=name, points_cost=points, value=Decimal(value), stock=stock
            )
        paid = Payment.objects.for_clinic(clinic).filter(
            status__in=[PaymentStatus.PAID, PaymentStatus.REFUNDED]
        )
        for payment_id in paid.values_list("pk", flat=True):
            services.payment_points_sync(clinic_id=clinic.pk, payment_id=payment_id)
        stdout.write(f"{clinic.name}: loyalty programme on, {len(REWARDS)} rewards.")
