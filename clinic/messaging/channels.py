"""Which channels a message may go on: the patient's preferred one, then WhatsApp, SMS and
e-mail, each only with an address and a consent in force for it and the message's purpose.

Consent rule (DESIGN.md "Messaging and consent"): a message goes on a channel only if the
patient's decision in force for that channel and the message's purpose is "granted" (for
service messages the clinic records it at registration, under the legal basis that fits,
e.g. health protection). Marketing needs its own opt-in. "SAIR" revokes both purposes on
that channel (``replies.message_receive``), so nothing more goes there.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from django.utils.translation import gettext as _

from clinic.choices import ConsentPurpose, ConsentStatus, ContactChannel
from clinic.models import Clinic, Consent, Patient
from clinic.selectors import consents_in_force

#: Channels a message can go on, in the order tried after the patient's preferred one.
MESSAGE_CHANNELS = (ContactChannel.WHATSAPP, ContactChannel.SMS, ContactChannel.EMAIL)


def _consents_in_force(patient: Patient) -> dict[tuple[str, str], str]:
    """(channel, purpose) → status of the latest decision, in one query."""
    return {key: c.status for key, c in consents_in_force(patient=patient).items()}


def channel_address(patient: Patient, channel: str) -> str:
    """Where a message to ``patient`` goes on ``channel``: the e-mail, else the phone."""
    return patient.email if channel == ContactChannel.EMAIL else patient.phone


@dataclass(frozen=True)
class ChannelPlan:
    usable: list[tuple[str, str]]  # (channel, address), in the order to try
    skipped: list[tuple[str, str]]  # (channel, why not)


def channel_plan(*, patient: Patient, purpose: str, only_channel: str = "") -> ChannelPlan:
    """The channels a message may go on, best first: the patient's preferred channel, then
    WhatsApp, SMS, e-mail — each only with an address and a granted consent for it and the
    message's purpose."""
    if only_channel:
        order = [only_channel]
    else:
        preferred = (
            [patient.preferred_channel] if patient.preferred_channel in MESSAGE_CHANNELS else []
        )
        order = list(dict.fromkeys([*preferred, *MESSAGE_CHANNELS]))
    consents = _consents_in_force(patient)
    usable, skipped = [], []
    for channel in order:
        address = channel_address(patient, channel)
        status = consents.get((channel, purpose))
        if not address:
            skipped.append((channel, _("no address for this channel")))
        elif status == ConsentStatus.REVOKED:
            skipped.append((channel, _("the patient opted out of this channel")))
        elif status != ConsentStatus.GRANTED:
            skipped.append((channel, _("no consent for this channel and purpose")))
        else:
            usable.append((channel, address))
    return ChannelPlan(usable=usable, skipped=skipped)


def first_channel(*, patient: Patient, purpose: str = ConsentPurpose.UTILITY) -> str:
    """The channel a message would most likely go on (links record it as how the patient
    answered); the preferred channel when none is usable."""
    plan = channel_plan(patient=patient, purpose=purpose)
    return plan.usable[0][0] if plan.usable else patient.preferred_channel


def first_channels(
    *, clinic: Clinic | int, patients: Collection[Patient], purpose: str = ConsentPurpose.UTILITY
) -> dict[int, str]:
    """:func:`first_channel` of many patients of one clinic (patient id → channel), with
    their consents read in one query instead of one per patient."""
    in_force: dict[int, dict[tuple[str, str], str]] = {p.pk: {} for p in patients}
    rows = (
        Consent.objects.for_clinic(clinic)
        .filter(patient__in=list(in_force))
        .order_by("-recorded_at", "-pk")
        .values_list("patient_id", "channel", "purpose", "status")
    )
    for patient_id, channel, consent_purpose, status in rows:
        in_force[patient_id].setdefault((channel, consent_purpose), status)
    channels = {}
    for patient in patients:
        preferred = (
            [patient.preferred_channel] if patient.preferred_channel in MESSAGE_CHANNELS else []
        )
        consents = in_force[patient.pk]
        channels[patient.pk] = next(
            (
                channel
                for channel in dict.fromkeys([*preferred, *MESSAGE_CHANNELS])
                if channel_address(patient, channel)
                and consents.get((channel, purpose)) == ConsentStatus.GRANTED
            ),
            patient.preferred_channel,
        )
    return channels
