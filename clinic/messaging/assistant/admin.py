"""The assistant in the admin: the conversations (state, the whole timeline, and the
buttons reception needs — take over, hand back, close, write), and each clinic's switch and
texts (``AssistantSettings``). Imported by ``clinic/messaging/admin.py``."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponseRedirect
from django.urls import path, reverse
from django.utils.decorators import method_decorator
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_POST

from clinic.admin.base import ClinicScopedAdmin

from . import services
from .models import AssistantSettings, Conversation, ConversationState

TIMELINE_LIMIT = 300


#: Admin button views change state: POST only.
method_decorator_post = method_decorator(require_POST)


class StaffReplyForm(forms.Form):
    text = forms.CharField(
        label=_("Write to the contact"), widget=forms.Textarea(attrs={"rows": 3}), max_length=1000
    )


@admin.register(Conversation)
class ConversationAdmin(ClinicScopedAdmin):
    """Conversations on WhatsApp and SMS, the ones needing a person first."""

    list_display = (
        "phone",
        "patient",
        "state",
        "handover_reason",
        "alert",
        "last_message_at",
    )
    list_filter = ("state", "alert", "channel")
    list_select_related = ("patient",)
    search_fields = ("phone", "patient__full_name")
    fields = (
        "channel",
        "phone",
        "patient",
        "state",
        "handover_reason",
        "alert",
        "taken_over_by",
        "taken_over_at",
        "last_message_at",
        "timeline",
    )
    readonly_fields = fields
    change_form_template = "messaging/admin/conversation_change_form.html"

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description=_("timeline"))
    def timeline(self, obj):
        rows = list(obj.messages.select_related("sent_by").order_by("-created_at", "-pk"))
        rows = rows[:TIMELINE_LIMIT]
        authors = {"contact": "←", "assistant": "→ 🤖", "staff": "→ 👤"}
        return format_html(
            '<table class="conversation-timeline"><tbody>{}</tbody></table>',
            format_html_join(
                "",
                '<tr><td>{}</td><td>{}</td><td style="white-space:pre-wrap">{}</td>'
                "<td>{}</td></tr>",
                (
                    (
                        m.created_at.strftime("%d/%m %H:%M"),
                        authors.get(m.author, m.author) + (f" {m.sent_by}" if m.sent_by_id else ""),
                        m.text,
                        m.get_status_display() if m.status else (m.intent or ""),
                    )
                    for m in rows
                ),
            ),
        )

    def get_urls(self):
        wrap = self.admin_site.admin_view
        return [
            path(
                "<int:pk>/take-over/",
                wrap(self.take_over_view),
                name="messaging_conversation_take_over",
            ),
            path(
                "<int:pk>/hand-back/",
                wrap(self.hand_back_view),
                name="messaging_conversation_hand_back",
            ),
            path("<int:pk>/close/", wrap(self.close_view), name="messaging_conversation_close"),
            path("<int:pk>/reply/", wrap(self.reply_view), name="messaging_conversation_reply"),
            *super().get_urls(),
        ]

    def _conversation(self, request, pk) -> Conversation:
        if not self.has_change_permission(request):
            raise PermissionDenied
        conversation = self.get_queryset(request).filter(pk=pk).first()
        if conversation is None:
            raise Http404
        return conversation

    def _back(self, conversation):
        return HttpResponseRedirect(
            reverse("admin:messaging_conversation_change", args=[conversation.pk])
        )

    @method_decorator_post
    def take_over_view(self, request, pk):
        conversation = self._conversation(request, pk)
        services.conversation_take_over(conversation=conversation, by=request.user)
        self.message_user(
            request,
            gettext("You have the conversation: the assistant is silent."),
            messages.SUCCESS,
        )
        return self._back(conversation)

    @method_decorator_post
    def hand_back_view(self, request, pk):
        conversation = self._conversation(request, pk)
        services.conversation_hand_back(conversation=conversation, by=request.user)
        self.message_user(request, gettext("The assistant answers again."), messages.SUCCESS)
        return self._back(conversation)

    @method_decorator_post
    def close_view(self, request, pk):
        conversation = self._conversation(request, pk)
        services.conversation_close(conversation=conversation, by=request.user)
        self.message_user(request, gettext("Conversation closed."), messages.SUCCESS)
        return self._back(conversation)

    @method_decorator_post
    def reply_view(self, request, pk):
        conversation = self._conversation(request, pk)
        form = StaffReplyForm(request.POST)
        if not form.is_valid():
            self.message_user(request, gettext("Write a message first."), messages.ERROR)
            return self._back(conversation)
        services.conversation_staff_reply(
            conversation=conversation, text=form.cleaned_data["text"], by=request.user
        )
        self.message_user(request, gettext("Message queued."), messages.SUCCESS)
        return self._back(conversation)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        extra_context = {
            **(extra_context or {}),
            "reply_form": StaffReplyForm(),
            "may_act": self.has_change_permission(request),
            "States": ConversationState,
        }
        return super().change_view(request, object_id, form_url, extra_context)


@admin.register(AssistantSettings)
class AssistantSettingsAdmin(ClinicScopedAdmin):
    """The clinic's assistant: on or off, its name, the consent text, hours, timeouts."""

    list_display = ("clinic", "enabled", "name", "human_timeout_hours")
    fieldsets = (
        (None, {"fields": ("clinic", "enabled", "name")}),
        (_("What it says"), {"fields": ("consent_text", "hours_text")}),
        (
            _("Limits"),
            {"fields": ("human_timeout_hours", "quiet_start", "quiet_end")},
        ),
    )
