"""Billing in the admin: payments at the desk (register, charge with PIX QR, receipt,
refund), packages, NFS-e, the ledger, financial reports and reconciliation.

Every change goes through ``billing.services``; these modules validate input and show
results. URL names: ``admin:billing_payment_register`` (``?appointment=`` or
``?patient=``), ``billing_payment_charge``, ``billing_payment_receipt``,
``billing_payment_refund``, ``billing_payment_do``, ``billing_patientpackage_sell``,
``billing_invoice_cancel``, ``billing_invoice_retry``, ``billing_reports``,
``billing_reports_export``, ``billing_reconciliation``.
"""

from . import invoices, ledger, packages, payments  # noqa: F401  (registers the ModelAdmins)
