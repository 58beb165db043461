"""Messaging's public functions, for the apps that send, read and answer messages
(scheduling, billing, the portal, config): import them from here. Each lives in the module
of its subject (see the package's docstring)."""

from .birthdays import birthdays_greet
from .channels import MESSAGE_CHANNELS, ChannelPlan, channel_plan, first_channel, first_channels
from .delivery import message_deliver
from .receipts import message_status_apply
from .replies import (
    ReplyOutcome,
    message_receive,
    message_reply,
    normalize_reply,
    patient_match,
    received_mark_answered,
    reply_handler,
)
from .retries import messages_retry_due
from .selectors import unanswered_count, uncertain_count
from .sending import DELIVER_QUEUE, MARKETING_QUEUE, deliver_queue, message_send, messages_send_many

__all__ = [
    "DELIVER_QUEUE",
    "MARKETING_QUEUE",
    "MESSAGE_CHANNELS",
    "ChannelPlan",
    "ReplyOutcome",
    "birthdays_greet",
    "channel_plan",
    "deliver_queue",
    "first_channel",
    "first_channels",
    "message_deliver",
    "message_receive",
    "message_reply",
    "message_send",
    "message_status_apply",
    "messages_retry_due",
    "messages_send_many",
    "normalize_reply",
    "patient_match",
    "received_mark_answered",
    "reply_handler",
    "unanswered_count",
    "uncertain_count",
]
