"""The ledger: expenses recorded by a manager, lines marked reconciled."""

from __future__ import annotations

from django.db import transaction

from clinic.models import Clinic

from ..choices import (
    TransactionKind,
)
from ..models import (
    FinancialTransaction,
)
from ..money import money


# --- Ledger -------------------------------------------------------------------------------
@transaction.atomic
def ledger_expense_save(*, expense: FinancialTransaction, by=None) -> FinancialTransaction:
    """A manager records (or corrects) an expense. Income lines come from payments only."""
    expense.kind = TransactionKind.EXPENSE
    if expense._state.adding:
        expense.created_by = by
    expense.amount = money(expense.amount)
    expense.full_clean()
    expense.save()
    return expense


@transaction.atomic
def ledger_mark_reconciled(*, clinic: Clinic, transaction_ids) -> int:
    """Mark the clinic's ledger lines reconciled (those not yet): one UPDATE, idempotent."""
    return (
        FinancialTransaction.objects.for_clinic(clinic)
        .filter(pk__in=list(transaction_ids), reconciled=False)
        .update(reconciled=True)
    )
