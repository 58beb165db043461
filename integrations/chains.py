"""Chains: the ordered providers a clinic uses for one kind, tried in turn.

``run_chain(clinic, "whatsapp", "send", message)`` asks each provider account of the clinic's
chain, through its circuit breaker, until one answers. A provider whose breaker is open is
skipped without a network call; a provider error (or a provider name no adapter serves) is
logged and the next one is tried. When every link fails the caller gets ``ChainFailed`` and
keeps its work queued. Anything else is a bug and propagates.

A provider that may have acted although no answer came back (``OutcomeUnknownError``: a
read timeout after the request went out) stops the chain with ``ChainOutcomeUnknown``:
trying the next provider could do the same thing twice (two SMS, two charges). The caller
decides what an unknown outcome means for its work.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pybreaker
from django.conf import settings

from . import breakers, registry, usage
from .base import (
    ChainFailed,
    ChainOutcomeUnknown,
    CircuitOpenError,
    OutcomeUnknownError,
    PermanentProviderError,
    ProviderError,
    elapsed_ms,
)
from .http import redact
from .models import ProviderAccount

if TYPE_CHECKING:
    from django.db.models import Model

    #: A clinic or its id (integrations sits below clinic: it names only the model's base).
    ClinicRef = Model | int

logger = logging.getLogger(__name__)

DEFAULT_PROVIDER = "console"


class Outcome:
    """What happened to one link of a chain (``ChainResult.tried``)."""

    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CIRCUIT_OPEN = "circuit_open"
    UNKNOWN_PROVIDER = "unknown_provider"
    #: Sent, no answer: the provider may have done it (the chain stopped there).
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class ChainResult:
    """The first provider's answer: its value, the account that gave it, and every
    (provider, outcome) tried on the way, in order; ``accounts`` are the accounts of
    ``tried``, in the same order (a clinic can have two accounts of one provider)."""

    value: Any
    account: ProviderAccount
    provider: str
    tried: list[tuple[str, str]] = field(default_factory=list)
    accounts: list[ProviderAccount] = field(default_factory=list)


def _clinic_id(clinic: ClinicRef) -> int:
    return clinic if isinstance(clinic, int) else clinic.pk


def chain_for(clinic: ClinicRef, kind: str) -> list[ProviderAccount]:
    """The clinic's enabled accounts for ``kind`` by (priority, pk), in one query; with none,
    the defaults of ``CUIDAR_DEFAULT_PROVIDERS[kind]`` (``["console"]`` when unset) as
    unsaved accounts without credentials."""
    clinic_id = _clinic_id(clinic)
    accounts = list(
        ProviderAccount.objects.filter(clinic_id=clinic_id, kind=kind, enabled=True).order_by(
            "priority", "pk"
        )
    )
    if accounts:
        return accounts
    defaults = getattr(settings, "CUIDAR_DEFAULT_PROVIDERS", {}).get(kind, [DEFAULT_PROVIDER])
    return [
        ProviderAccount(clinic_id=clinic_id, kind=kind, provider=name, priority=index)
        for index, name in enumerate(defaults)
    ]


def run_chain(
    clinic: ClinicRef,
    kind: str,
    operation: str,
    *args,
    before_call: Callable[[ProviderAccount], None] | None = None,
    **kwargs,
) -> ChainResult:
    """Call ``operation(*args, **kwargs)`` on the clinic's providers of ``kind`` in chain
    order and return the first success; raise ``ChainFailed`` (with each provider's error)
    when none succeeds, ``ChainOutcomeUnknown`` when one may have acted without answering.
    ``before_call(account)`` runs just before each provider is called (a caller records
    which provider its work is in flight at)."""
    clinic_id = _clinic_id(clinic)
    tried: list[tuple[str, str]] = []
    accounts: list[ProviderAccount] = []
    errors: list[tuple[str, ProviderError]] = []
    secrets: list[str] = []

    for account in chain_for(clinic_id, kind):
        name = account.provider
        accounts.append(account)  # each error also carries its .account
        try:
            provider = registry.get(kind, name)(account)
        except registry.UnknownProvider as exc:
            logger.error("chain %s.%s clinic %s: %s", kind, operation, clinic_id, exc)
            tried.append((name, Outcome.UNKNOWN_PROVIDER))
            error = PermanentProviderError(str(exc), provider=name)
            error.account = account
            errors.append((name, error))
            continue

        secrets.extend(provider.secrets())
        breaker = breakers.breaker_for(
            clinic_id=account.clinic_id, account_key=breakers.account_key(account)
        )
        if before_call is not None:
            before_call(account)
        started = time.perf_counter()
        try:
            value = breaker.call(getattr(provider, operation), *args, **kwargs)
        except pybreaker.CircuitBreakerError:
            logger.info(
                "chain %s.%s clinic %s: %s skipped, circuit open", kind, operation, clinic_id, name
            )
            tried.append((name, Outcome.CIRCUIT_OPEN))
            error = CircuitOpenError(f"{name}: circuit open", provider=name)
            error.account = account
            errors.append((name, error))
            continue
        except OutcomeUnknownError as exc:
            exc.provider = exc.provider or name
            logger.warning(
                "chain %s.%s clinic %s: %s may have acted (no answer), chain stopped: %s",
                kind,
                operation,
                clinic_id,
                name,
                redact(exc, secrets),
            )
            tried.append((name, Outcome.UNKNOWN))
            exc.account = account
            errors.append((name, exc))
            raise ChainOutcomeUnknown(
                f"{kind}.{operation}: {name} may have acted: {redact(exc, secrets)}",
                errors=errors,
                provider=name,
                account=account,
                tried=tried,
            ) from None
        except ProviderError as exc:
            exc.provider = exc.provider or name
            logger.warning(
                "chain %s.%s clinic %s: %s failed (%s): %s",
                kind,
                operation,
                clinic_id,
                name,
                "permanent" if exc.permanent else "transient",
                redact(exc, secrets),
            )
            tried.append((name, Outcome.FAILED))
            exc.account = account
            errors.append((name, exc))
            continue

        tried.append((name, Outcome.SUCCEEDED))
        if kind in usage.MESSAGE_KINDS and operation == "send":
            # A message the provider took is a message the clinic pays for (cost report).
            usage.usage_record_message(
                account=account, operation=operation, latency_ms=elapsed_ms(started)
            )
        return ChainResult(
            value=value, account=account, provider=name, tried=tried, accounts=accounts
        )

    summary = (
        "; ".join(f"{name}: {redact(error, secrets)}" for name, error in errors) or "no provider"
    )
    raise ChainFailed(f"every {kind} provider failed for {operation}: {summary}", errors=errors)
