"""Every write of billing: payments at the desk and through gateways, refunds, packages and
their sessions, NFS-e, the ledger. Each runs in a transaction and publishes its event.

Payment status machine (``choices.PAYMENT_TRANSITIONS``): pending → paid | failed |
cancelled; paid → refunded. Gateway notifications converge: a replayed or late event never
pays twice, and never takes a paid payment back to pending, failed or overdue. The ledger
books what arrived (``amount_received``), not what was charged: a gateway reporting less
leaves the payment pending with the rest owed, and flags the divergence for the desk (more
than charged is booked and flagged too).

Modules by entity: ``payments``, ``gateway`` (notifications and reconciliation),
``packages``, ``invoices`` (NFS-e), ``ledger``, ``dunning``; ``common`` holds the status
machine's moves they share.
"""

from .common import GATEWAY_METHODS
from .discounts import payment_discount_add, payment_discount_code_apply
from .dunning import dunning_run
from .gateway import (
    RECONCILE_BATCH,
    RECONCILE_EVERY,
    RECONCILE_WINDOW,
    ReconcileResult,
    payment_apply_update,
    payment_for_update,
    payments_reconcile,
)
from .invoices import (
    invoice_apply_update,
    invoice_cancel,
    invoice_issue,
    invoice_retry,
    invoices_poll,
)
from .ledger import ledger_expense_save, ledger_mark_reconciled
from .packages import package_save_items, package_sell, package_session_debit, packages_expiry_run
from .payments import (
    payment_cancel,
    payment_charge_create,
    payment_charge_send,
    payment_confirm,
    payment_receipt_send,
    payment_refund,
    payment_register,
    payment_static_pix,
)

__all__ = [
    "GATEWAY_METHODS",
    "RECONCILE_BATCH",
    "RECONCILE_EVERY",
    "RECONCILE_WINDOW",
    "ReconcileResult",
    "dunning_run",
    "invoice_apply_update",
    "invoice_cancel",
    "invoice_issue",
    "invoice_retry",
    "invoices_poll",
    "ledger_expense_save",
    "ledger_mark_reconciled",
    "package_save_items",
    "package_sell",
    "package_session_debit",
    "packages_expiry_run",
    "payment_apply_update",
    "payment_cancel",
    "payment_charge_create",
    "payment_charge_send",
    "payment_confirm",
    "payment_discount_add",
    "payment_discount_code_apply",
    "payment_for_update",
    "payment_receipt_send",
    "payment_refund",
    "payment_register",
    "payment_static_pix",
    "payments_reconcile",
]
