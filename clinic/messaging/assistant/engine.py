"""The dialogue: one patient message in, one answer out, by rules.

:func:`assistant_answer` runs inside the caller's transaction with the conversation's row
locked (``services.conversation_route``), so one message of a phone is handled at a time.
Order of business, every time:

1. safety (``intents.safety_check``): an emergency gets SAMU 192 / CVV 188 at once and the
   clinic is alerted; a clinical question gets a fixed, kind answer and a person;
2. "a person, please" and "stop sending";
3. the answer to the question the assistant asked (a number from a list, a day, "sim"),
   if the message is one;
4. otherwise the message's intent starts what was asked (``intents.classify``).

Slot filling for booking: service → professional or "anyone" → day → numbered slots from
real availability → confirmation (the absolute date echoed: "sexta, 13/03, 9h") → booked
through scheduling's services, the slot re-checked; taken meanwhile → the next slots.
Identity comes first where a patient is needed: a known phone is its patient; several
patients on one phone are asked which; an unknown number gives name and CPF (validated)
under the clinic's consent text, and the patient is created through clinic's services.

The dialogue state (``Conversation.dialogue``) holds ids, dates and the step, nothing the
patient wrote. Texts are pt-BR, as patients read them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, time, timedelta

from django.core.exceptions import ValidationError
from django.db import transaction

from clinic.choices import ConsentPurpose, ConsentSource, ConsentStatus
from clinic.kernel.timezones import clinic_zone
from clinic.models import Patient
from clinic.validators import cpf_normalize, cpf_validate, phone_variants

from . import tools
from .dates import When, describe, describe_day, parse_when
from .intents import Intent, Reading, Safety, classify, safety_check
from .models import AssistantSettings, Conversation, ConversationState
from .normalize import normalize, similar

#: Words in many services' names: they alone do not say which service.
GENERIC_SERVICE_WORDS = {
    "consulta",
    "sessao",
    "avaliacao",
    "retorno",
    "atendimento",
    "clinica",
    "clinico",
}
#: WhatsApp list and button titles longer than this are dropped by some providers.
TITLE_MAX = 24
#: Slots offered at once.
OFFER = 5
#: Messages not understood in a row before a person is called.
LOOP_LIMIT = 3
#: How far ahead a search without a day looks, and the next one after an empty day.
SEARCH_DAYS = 14

YES = {
    "sim",
    "s",
    "1",
    "isso",
    "pode",
    "confirmo",
    "confirmar",
    "ok",
    "certo",
    "claro",
    "quero",
    "pode ser",
    "isso mesmo",
    "sim por favor",
    "pode marcar",
    "beleza",
    "perfeito",
    "sim pode",
    "yes",
    "confirma",
    "fechado",
    "combinado",
}
NO = {
    "nao",
    "n",
    "2",
    "nao quero",
    "negativo",
    "outro",
    "outro horario",
    "nenhum",
    "nenhum desses",
    "nao obrigado",
    "nao obrigada",
    "cancela",
    "deixa",
}
ANYONE = {
    "qualquer",
    "qualquer um",
    "qualquer uma",
    "tanto faz",
    "indiferente",
    "nenhuma preferencia",
    "sem preferencia",
    "o primeiro disponivel",
    "quem tiver",
    "qualquer profissional",
}

EMERGENCY_TEXT = (
    "⚠️ Isso pode ser uma emergência. Ligue agora para o SAMU 192 (gratuito, 24 h) ou vá ao "
    "pronto-socorro mais próximo. Avisei a equipe da clínica."
)
SUICIDE_TEXT = (
    "Sinto muito que você esteja passando por isso. Você não está sozinho(a): ligue 188 (CVV, "
    "gratuito, 24 h) ou acesse cvv.org.br. Em risco imediato, ligue 192 (SAMU). Avisei a "
    "equipe da clínica para falar com você."
)
CLINICAL_TEXT = (
    "Não posso dar orientações médicas, diagnósticos ou indicar remédios — isso só o "
    "profissional pode fazer com segurança. Vou pedir para alguém da equipe falar com você. "
    "Se for urgente, ligue 192 (SAMU)."
)


class NeedsModel(Exception):
    """The rules do not understand and the clinic has a model: ask it, outside the
    transaction (``services.conversation_answer`` → ``tasks.conversation_model_turn_task``)."""


#: A model's intent (``integrations.llm.INTENTS``) → the rules' intent.
MODEL_INTENTS = {
    "book": Intent.BOOK,
    "reschedule": Intent.RESCHEDULE,
    "cancel": Intent.CANCEL,
    "confirm": Intent.CONFIRM,
    "my_appointments": Intent.MY_APPOINTMENTS,
    "prices": Intent.PRICES,
    "package": Intent.PACKAGE,
    "package_balance": Intent.PACKAGE,
    "pay": Intent.PAY,
    "address_hours": Intent.ADDRESS_HOURS,
    "human": Intent.HUMAN,
    "opt_out": Intent.OPT_OUT,
    "greeting": Intent.GREETING,
    "thanks": Intent.THANKS,
}
#: The intent recorded for a message left to the model.
MODEL_PENDING = "model_pending"


@dataclass
class Answer:
    """What the assistant says back: a text and the options offered (titles ≤ 24 chars)."""

    text: str
    options: list[str] = field(default_factory=list)
    intent: str = ""
    handled: bool = True


def title(text: str) -> str:
    """A list or button title WhatsApp will show: at most 24 characters."""
    text = " ".join(text.split())
    return text if len(text) <= TITLE_MAX else text[: TITLE_MAX - 1].rstrip() + "…"


def numbered(lines: list[str]) -> str:
    return "\n".join(f"{i}. {line}" for i, line in enumerate(lines, 1))


def money(value) -> str:
    if value is None:
        return "sob consulta"
    whole, cents = f"{value:.2f}".split(".")
    whole = f"{int(whole):,}".replace(",", ".")
    return f"R$ {whole},{cents}"


class Turn:
    """One message handled for one conversation."""

    def __init__(
        self,
        *,
        conversation: Conversation,
        settings: AssistantSettings,
        text: str,
        now,
        channel: str,
        hint=None,
        kb=None,
        defer_to_model: bool = False,
    ):
        self.conversation = conversation
        self.clinic = conversation.clinic
        self.settings = settings
        self.text = text
        self.norm = normalize(text)
        self.now = now
        self.zone = clinic_zone(self.clinic)
        self.today: date = now.astimezone(self.zone).date()
        self.channel = channel
        self.d = dict(conversation.dialogue or {})
        #: A language model's reading of the message (``integrations.llm.Extraction``),
        #: used only where the rules read nothing; ``kb``: a knowledge-base reply found
        #: outside the transaction; ``defer_to_model``: the clinic has a model, so a
        #: message the rules do not understand waits for it (``NeedsModel``).
        self.hint = hint
        self.kb = kb
        self.defer_to_model = defer_to_model

    def _services(self) -> list[tools.ServiceInfo]:
        """The bookable services, read once per message."""
        if not hasattr(self, "_offered"):
            self._offered = tools.tool("services")(clinic=self.clinic)
        return self._offered

    # --- entry -------------------------------------------------------------------------
    def run(self) -> Answer:
        answer = self._run()
        if not self.conversation.greeted and answer.handled:
            # It says it is a virtual assistant, once per conversation.
            intro = f"Olá! Sou a {self.settings.name}, assistente virtual da {self.clinic.name}."
            if answer.intent != Intent.GREETING:
                answer.text = f"{intro}\n{answer.text}"
            self.conversation.greeted = True
        self.conversation.dialogue = self.d
        return answer

    def _run(self) -> Answer:
        danger = safety_check(self.text)
        if danger is not None:
            return self._safety(danger)
        reading = classify(self.text)
        if reading.intent == Intent.UNKNOWN and self.hint is not None:
            intent = MODEL_INTENTS.get(self.hint.intent)
            if intent is not None:
                reading = Reading(intent, self.hint.confidence, {})
        if reading.intent in (Intent.HUMAN, Intent.OPT_OUT):
            return self._intent(reading.intent)
        step = self.d.get("step")
        if step:
            answer = getattr(self, f"_step_{step}")()
            if answer is not None:
                self.d.pop("misses", None)
                return answer
            if reading.intent not in (Intent.UNKNOWN, Intent.GREETING, Intent.THANKS):
                self.d = {}
                return self._intent(reading.intent)
            return self._miss(repeat=self.d.get("question", ""))
        if reading.intent == Intent.UNKNOWN:
            return self._miss()
        self.d.pop("misses", None)
        return self._intent(reading.intent)

    def _miss(self, repeat: str = "") -> Answer:
        if self.defer_to_model:
            raise NeedsModel
        if not repeat:
            reply = self.kb if self.kb is not None else self._knowledge()
            if reply is not None:
                ids = ",".join(str(i) for i in reply.cited_entry_ids)
                return Answer(reply.text, intent=f"kb:{ids}"[:30])
        misses = self.d.get("misses", 0) + 1
        self.d["misses"] = misses
        if misses >= LOOP_LIMIT:
            return self._handover(
                "loop",
                "Desculpe, não estou conseguindo entender. Vou chamar "
                "alguém da equipe para continuar com você.",
            )
        text = "Desculpe, não entendi. " + (repeat or self._menu())
        return Answer(text, intent=Intent.UNKNOWN)

    def _knowledge(self):
        """The clinic's knowledge base, by its own words (no model: this runs inside the
        transaction, and only when the clinic has no model, so none is called)."""
        from ..knowledge import knowledge_reply

        return knowledge_reply(clinic=self.clinic, question=self.text)

    def _menu(self) -> str:
        return (
            "Posso ajudar a agendar, remarcar, cancelar ou confirmar consultas, informar "
            "valores, saldo de pacote, pagamento (PIX), endereço e horários. Se preferir, "
            "escreva “atendente”."
        )

    # --- safety and handover -----------------------------------------------------------
    def _safety(self, danger: str) -> Answer:
        self.d = {}
        if danger == Safety.CLINICAL:
            return self._handover("clinical", CLINICAL_TEXT, intent="safety_clinical")
        self.conversation.alert = True
        text = SUICIDE_TEXT if danger == Safety.SUICIDE else EMERGENCY_TEXT
        return self._handover(danger, text, intent=f"safety_{danger}")

    def _handover(self, reason: str, text: str, *, intent: str = Intent.HUMAN) -> Answer:
        self.d = {}
        self.conversation.state = ConversationState.WAITING
        self.conversation.handover_reason = reason
        return Answer(text, intent=intent)

    # --- intents -----------------------------------------------------------------------
    def _intent(self, intent: str) -> Answer:
        if intent == Intent.GREETING:
            return Answer(
                f"Olá! Sou a {self.settings.name}, assistente virtual da "
                f"{self.clinic.name}. Como posso ajudar? {self._menu()}",
                intent=intent,
            )
        if intent == Intent.THANKS:
            return Answer("Por nada! Se precisar, é só chamar. 😊", intent=intent)
        if intent == Intent.HUMAN:
            return self._handover(
                "asked",
                "Certo! Vou chamar alguém da equipe para falar com "
                "você. Aguarde um pouquinho, por favor.",
            )
        if intent == Intent.OPT_OUT:
            return self._opt_out()
        if intent == Intent.ADDRESS_HOURS:
            return self._address()
        if intent == Intent.PRICES:
            return self._prices()
        # Everything else is about the patient: who is it?
        self.d = {"intent": intent}
        if intent == Intent.BOOK:
            self._prefill()
        return self._identified_then(intent)

    def _identified_then(self, intent: str) -> Answer:
        if self.conversation.patient is None:
            answer = self._identify()
            if answer is not None:
                return answer
        return self._continue(intent)

    def _continue(self, intent: str) -> Answer:
        if intent == Intent.BOOK:
            return self._book_advance()
        if intent in (Intent.RESCHEDULE, Intent.CANCEL, Intent.CONFIRM):
            return self._pick_appointment(intent)
        if intent == Intent.MY_APPOINTMENTS:
            return self._upcoming()
        if intent == Intent.PACKAGE:
            return self._package()
        if intent == Intent.PAY:
            return self._pay()
        return self._miss()

    def _opt_out(self) -> Answer:
        """The number asks to stop: every patient on it is opted out of this channel."""
        from clinic.services import consent_revoke

        from ..replies import _OPT_OUT_SOURCES

        patients = Patient.objects.for_clinic(self.clinic).filter(
            phone__in=phone_variants(self.conversation.phone)
        )
        source = _OPT_OUT_SOURCES.get(self.channel, ConsentSource.RECEPTION)
        for patient in patients:
            for purpose in (ConsentPurpose.UTILITY, ConsentPurpose.MARKETING):
                consent_revoke(
                    patient=patient, channel=self.channel, purpose=purpose, source=source
                )
        self.d = {}
        self.conversation.state = ConversationState.CLOSED
        return Answer(
            "Pronto, você não receberá mais mensagens nossas por aqui. Se mudar de "
            "ideia, é só escrever.",
            intent=Intent.OPT_OUT,
        )

    def _address(self) -> Answer:
        clinic = self.clinic
        parts = [f"📍 {clinic.address_line}" if clinic.address_line else ""]
        if self.settings.hours_text:
            parts.append(f"🕘 {self.settings.hours_text}")
        if clinic.phone:
            parts.append(f"📞 {clinic.phone_formatted}")
        text = (
            "\n".join(p for p in parts if p)
            or "Vou pedir para a equipe te passar essas informações."
        )
        return Answer(text, intent=Intent.ADDRESS_HOURS)

    def _prices(self) -> Answer:
        offered = self._services()
        if not offered:
            return self._handover("no_services", "Vou pedir para a equipe te passar os valores.")
        match = self._match_service(offered)
        if match is not None:
            return Answer(
                f"{match.name}: {money(match.price)} ({match.duration_minutes} min). "
                "Quer agendar? É só dizer “quero marcar”.",
                intent=Intent.PRICES,
            )
        lines = [f"{s.name} — {money(s.price)}" for s in offered]
        return Answer(
            "Nossos serviços e valores:\n"
            + "\n".join(lines)
            + "\nQuer agendar? É só dizer “quero marcar”.",
            intent=Intent.PRICES,
        )

    # --- identity ----------------------------------------------------------------------
    def _identify(self) -> Answer | None:
        """``None`` when the patient is known now; else the question to ask."""
        candidates = list(
            Patient.objects.for_clinic(self.clinic)
            .filter(phone__in=phone_variants(self.conversation.phone))
            .order_by("full_name", "pk")[:9]
        )
        if len(candidates) == 1:
            self.conversation.patient = candidates[0]
            return None
        if candidates:
            self.d["step"] = "who"
            self.d["who"] = [p.pk for p in candidates]
            names = [title(p.social_name or p.full_name) for p in candidates]
            question = "Com quem estou falando? Responda com o número:\n" + numbered(names)
            self.d["question"] = question
            return Answer(question, options=names, intent="identify")
        self.d["step"] = "name"
        question = (
            f"{self.settings.consent_text}\n\nQual é o seu nome completo (da pessoa que "
            "será atendida)?"
        )
        self.d["question"] = "Qual é o seu nome completo?"
        return Answer(question, intent="identify")

    def _step_who(self) -> Answer | None:
        ids = self.d.get("who", [])
        patients = {p.pk: p for p in Patient.objects.for_clinic(self.clinic).filter(pk__in=ids)}
        chosen = self._number(len(ids))
        if chosen is None:
            for pk in ids:
                p = patients.get(pk)
                if p and self.norm and self.norm.split()[0] == normalize(p.full_name).split()[0]:
                    chosen = ids.index(pk) + 1
        if chosen is None or ids[chosen - 1] not in patients:
            return None
        self.conversation.patient = patients[ids[chosen - 1]]
        return self._after_identity()

    def _step_name(self) -> Answer | None:
        words = [w for w in re.sub(r"[^\w\s'-]", " ", self.text).split() if w]
        if len(words) < 2 or any(ch.isdigit() for ch in self.text) or len(self.text) > 120:
            if len(words) == 1 and not any(ch.isdigit() for ch in self.text):
                self.d["question"] = "Preciso do nome completo (nome e sobrenome), por favor."
            return None
        self.d["new_name"] = " ".join(w.capitalize() if w.islower() else w for w in words)
        self.d["step"] = "cpf"
        question = "Obrigada! Agora o seu CPF (só os números):"
        self.d["question"] = question
        return Answer(question, intent="identify")

    def _step_cpf(self) -> Answer | None:
        digits = re.sub(r"\D", "", self.text)
        if len(digits) != 11:
            self.d["question"] = "O CPF tem 11 números. Pode enviar de novo?"
            return None
        cpf = cpf_normalize(digits)
        try:
            cpf_validate(cpf)
        except ValidationError:
            self.d["question"] = (
                "Esse CPF não é válido. Confira os números e envie de novo, por favor."
            )
            return None
        if Patient.objects.for_clinic(self.clinic).filter(cpf=cpf).exists():
            # Someone else's number, or a new phone: a person checks before anything is shown.
            return self._handover(
                "cpf_known",
                "Encontrei um cadastro com esse CPF e outro "
                "telefone. Vou pedir para a equipe confirmar seus dados.",
            )
        from clinic.services import consent_record, patient_create

        patient = patient_create(
            clinic=self.clinic,
            full_name=self.d.pop("new_name", "")[:255],
            cpf=cpf,
            phone=self.conversation.phone,
        )
        consent_record(
            patient=patient,
            channel=self.channel,
            purpose=ConsentPurpose.UTILITY,
            status=ConsentStatus.GRANTED,
            source=ConsentSource.WHATSAPP if self.channel == "whatsapp" else ConsentSource.SMS,
            text_version="assistant",
        )
        self.conversation.patient = patient
        return self._after_identity()

    def _after_identity(self) -> Answer:
        for key in ("who", "step", "question"):
            self.d.pop(key, None)
        return self._continue(self.d.get("intent", Intent.BOOK))

    # --- booking -----------------------------------------------------------------------
    def _prefill(self) -> None:
        offered = self._services()
        match = self._match_service(offered)
        if match is not None:
            self.d["service_id"] = match.id
        when = self._when()
        if when is not None:
            self.d["when"] = when.as_json()

    def _match_service(self, offered) -> tools.ServiceInfo | None:
        """The service the message names ("fisio" → "Sessão de fisioterapia"): the one
        whose distinctive words match most, if only one does; words every clinic uses
        ("consulta", "sessão") only break ties."""
        said = self.norm
        if self.hint is not None and self.hint.entities.get("service"):
            said = f"{said} {normalize(self.hint.entities['service'])}"
        words = [w for w in said.split() if len(w) >= 4]
        best, best_score, tie = None, 0.0, False
        for service in offered:
            score = 0.0
            for name_word in normalize(service.name).split():
                if len(name_word) < 4:
                    continue
                hit = any(
                    similar(w, name_word) or (len(w) >= 4 and name_word.startswith(w))
                    for w in words
                )
                if hit:
                    score += 0.1 if name_word in GENERIC_SERVICE_WORDS else 1
            if score > best_score:
                best, best_score, tie = service, score, False
            elif score and score == best_score:
                tie = True
        return None if tie or best_score < 1 else best

    def _book_advance(self) -> Answer:
        d = self.d
        d.pop("step", None)
        if not d.get("service_id"):
            offered = self._services()
            if not offered:
                return self._handover("no_services", "Vou pedir para a equipe agendar com você.")
            if len(offered) == 1:
                d["service_id"] = offered[0].id
            else:
                d["step"] = "service"
                d["services"] = [s.id for s in offered]
                names = [title(s.name) for s in offered]
                question = "Qual serviço você quer agendar?\n" + numbered(names)
                d["question"] = question
                return Answer(question, options=names, intent=Intent.BOOK)
        if "professional_id" not in d:
            people = tools.tool("professionals")(clinic=self.clinic, service_id=d["service_id"])
            if not people:
                return self._handover(
                    "no_professional", "Vou pedir para a equipe agendar com você."
                )
            if len(people) == 1:
                d["professional_id"] = people[0][0]
            else:
                d["step"] = "professional"
                d["people"] = [pk for pk, _name in people]
                names = [title(name) for _pk, name in people] + ["Qualquer um"]
                question = "Com qual profissional?\n" + numbered(names)
                d["question"] = question
                return Answer(question, options=names, intent=Intent.BOOK)
        if not d.get("when"):
            d["step"] = "day"
            question = (
                "Para qual dia e horário? Pode escrever como preferir, por exemplo "
                "“amanhã de manhã”, “sexta que vem”, “dia 12 às 15h” ou “12/03”."
            )
            d["question"] = question
            return Answer(question, intent=Intent.BOOK)
        return self._offer()

    def _step_service(self) -> Answer | None:
        ids = self.d.get("services", [])
        chosen = self._number(len(ids))
        if chosen is None:
            offered = [s for s in self._services() if s.id in ids]
            match = self._match_service(offered)
            if match is None:
                return None
            self.d["service_id"] = match.id
        else:
            self.d["service_id"] = ids[chosen - 1]
        when = self._when() if chosen is None else None
        if when is not None:
            self.d["when"] = when.as_json()
        return self._book_advance()

    def _step_professional(self) -> Answer | None:
        ids = self.d.get("people", [])
        chosen = self._number(len(ids) + 1)
        if (chosen is None and self.norm in ANYONE) or chosen == len(ids) + 1:
            self.d["professional_id"] = None
        elif chosen is not None:
            self.d["professional_id"] = ids[chosen - 1]
        else:
            people = tools.tool("professionals")(
                clinic=self.clinic, service_id=self.d["service_id"]
            )
            words = set(self.norm.split()) - {"dra", "dr", "doutora", "doutor", "a", "o", "com"}
            found = [
                pk for pk, name in people if words & set(normalize(name).split()) - {"dra", "dr"}
            ]
            if len(found) != 1:
                return None
            self.d["professional_id"] = found[0]
        return self._book_advance()

    def _step_day(self) -> Answer | None:
        when = self._when()
        if when is None:
            return None
        self.d["when"] = when.as_json()
        return self._offer()

    def _search(self, when: When, exclude=()) -> tuple[list[tools.SlotInfo], bool]:
        """Slots for ``when``; if none, the next ones after it (second value False). A time
        asked for and free comes first, alone."""
        first = when.first_day or self.today
        last = when.last_day or (first + timedelta(days=SEARCH_DAYS))
        find = tools.tool("availability")
        common = {
            "clinic": self.clinic,
            "service_id": self.d["service_id"],
            "professional_id": self.d.get("professional_id"),
            "exclude_starts": frozenset(exclude),
        }
        hours = when.hours()
        if when.time is not None:
            # The exact time first, then that part of the day.
            hours = (when.time.hour, when.time.hour + 1)
        slots = find(first_day=first, last_day=last, hours=hours, limit=OFFER, **common)
        if when.time is not None:
            exact = [s for s in slots if s.start.astimezone(self.zone).time() == when.time]
            if exact:
                return exact[:1], True
            around = find(first_day=first, last_day=last, hours=None, limit=OFFER, **common)
            if around:
                return around, False
        if slots:
            return slots, True
        later = find(
            first_day=last + timedelta(days=1),
            last_day=last + timedelta(days=SEARCH_DAYS),
            hours=None,
            limit=OFFER,
            **common,
        )
        return later, False

    def _offer(self, *, taken: bool = False) -> Answer:
        when = When.from_json(self.d.get("when")) or When()
        exclude = self.d.get("taken", [])
        slots, as_asked = self._search(when, exclude)
        if not slots:
            self.d["step"] = "day"
            question = "Não encontrei horários livres nesse período. Quer tentar outro dia?"
            self.d["question"] = question
            self.d.pop("when", None)
            return Answer(question, intent=Intent.BOOK)
        if len(slots) == 1 and as_asked and when.time is not None and not taken:
            self.d["offered"] = [slots[0].as_json()]
            return self._ask_confirm(slots[0])
        self.d["offered"] = [s.as_json() for s in slots]
        self.d["step"] = "slot"
        labels = [self._slot_label(s) for s in slots]
        if taken:
            head = "Esse horário acabou de ser ocupado. Os próximos livres são:"
        elif as_asked:
            head = "Tenho estes horários:"
        elif when.first_day:
            head = f"Não tenho horário livre em {self._when_words(when)}. Os próximos são:"
        else:
            head = "Os próximos horários livres são:"
        question = f"{head}\n{numbered(labels)}\nResponda com o número do horário."
        # Repeated after a message not understood: the list, without the news.
        self.d["question"] = (
            f"Os horários livres são:\n{numbered(labels)}\nResponda com o número do horário."
        )
        return Answer(question, options=[title(label) for label in labels], intent=Intent.BOOK)

    def _when_words(self, when: When) -> str:
        if when.day:
            return describe_day(when.day)
        if when.first_day and when.last_day:
            return f"{when.first_day:%d/%m} a {when.last_day:%d/%m}"
        return "nesse período"

    def _slot_label(self, slot: tools.SlotInfo) -> str:
        label = describe(slot.start.astimezone(self.zone))
        if self.d.get("professional_id") is None and slot.professional_name:
            first = slot.professional_name.split()
            short = (
                " ".join(first[:2])
                if first and first[0].lower().rstrip(".") in ("dr", "dra")
                else first[0]
            )
            label = f"{label} – {short}"
        return label

    def _step_slot(self) -> Answer | None:
        offered = self.d.get("offered", [])
        chosen = self._number(len(offered))
        if chosen is not None:
            return self._ask_confirm(tools.SlotInfo.from_json(offered[chosen - 1]))
        when = self._when()
        if when is not None:
            self.d["when"] = when.merged(
                When.from_json(self.d.get("when")) if not when.first_day else None
            ).as_json()
            return self._offer()
        if self.norm in NO:
            self.d["step"] = "day"
            self.d.pop("when", None)
            question = "Sem problema. Para qual outro dia?"
            self.d["question"] = question
            return Answer(question, intent=Intent.BOOK)
        return None

    def _ask_confirm(self, slot: tools.SlotInfo) -> Answer:
        self.d["chosen"] = slot.as_json()
        self.d["step"] = "confirm"
        service = next(
            (s for s in self._services() if s.id == self.d["service_id"]),
            None,
        )
        what = service.name if service else "Consulta"
        who = f" com {slot.professional_name}" if slot.professional_name else ""
        verb = "Remarcar para" if self.d.get("intent") == Intent.RESCHEDULE else "Confirma"
        question = (
            f"{verb} {what}{who} em {describe(slot.start.astimezone(self.zone))}?\n1. Sim\n2. Não"
        )
        self.d["question"] = question
        return Answer(question, options=["Sim", "Não"], intent=self.d.get("intent", Intent.BOOK))

    def _step_confirm(self) -> Answer | None:
        if self.norm in NO or self.norm.startswith("nao"):
            self.d.pop("chosen", None)
            self.d["step"] = "day"
            self.d.pop("when", None)
            question = "Tudo bem! Para qual outro dia e horário?"
            self.d["question"] = question
            return Answer(question, intent=self.d.get("intent", Intent.BOOK))
        if not (
            self.norm in YES
            or self.norm.startswith("sim")
            or classify(self.text).intent == Intent.CONFIRM
        ):
            return None
        slot = tools.SlotInfo.from_json(self.d["chosen"])
        patient = self.conversation.patient
        try:
            if self.d.get("intent") == Intent.RESCHEDULE:
                info = tools.tool("reschedule")(
                    clinic=self.clinic,
                    patient=patient,
                    appointment_id=self.d["appointment_id"],
                    slot=slot,
                    service_id=self.d["service_id"],
                )
            else:
                info = tools.tool("book")(
                    clinic=self.clinic, patient=patient, slot=slot, service_id=self.d["service_id"]
                )
        except tools.SlotTaken:
            # Someone was faster: offer the next free times, never the taken one.
            self.d.setdefault("taken", []).append(slot.start.isoformat())
            self.d.pop("chosen", None)
            return self._offer(taken=True)
        except tools.ToolRefused:
            return self._handover(
                "refused", "Não consegui concluir por aqui. Vou pedir para a equipe ajudar você."
            )
        done = "remarcada" if self.d.get("intent") == Intent.RESCHEDULE else "agendada"
        self.d = {}
        return Answer(
            f"Pronto! {info.service_name} {done} para "
            f"{describe(info.start.astimezone(self.zone))} com {info.professional_name}. "
            "Você receberá um lembrete antes. Até lá! 😊",
            intent="booked",
        )

    # --- the patient's appointments ----------------------------------------------------
    def _pick_appointment(self, intent: str) -> Answer:
        upcoming = tools.tool("upcoming")(clinic=self.clinic, patient=self.conversation.patient)
        if not upcoming:
            self.d = {}
            return Answer(
                "Não encontrei consultas marcadas para você. Quer agendar uma? É só "
                "dizer “quero marcar”.",
                intent=intent,
            )
        if len(upcoming) == 1:
            return self._act_on(intent, upcoming[0])
        self.d["step"] = "which"
        self.d["appointments"] = [a.id for a in upcoming]
        labels = [f"{describe(a.start.astimezone(self.zone))} – {a.service_name}" for a in upcoming]
        verbs = {
            Intent.CANCEL: "cancelar",
            Intent.RESCHEDULE: "remarcar",
            Intent.CONFIRM: "confirmar",
        }
        question = f"Qual consulta você quer {verbs[intent]}?\n{numbered(labels)}"
        self.d["question"] = question
        return Answer(question, options=[title(label) for label in labels], intent=intent)

    def _step_which(self) -> Answer | None:
        ids = self.d.get("appointments", [])
        chosen = self._number(len(ids))
        if chosen is None:
            return None
        upcoming = {
            a.id: a
            for a in tools.tool("upcoming")(clinic=self.clinic, patient=self.conversation.patient)
        }
        appointment = upcoming.get(ids[chosen - 1])
        if appointment is None:
            return None
        return self._act_on(self.d["intent"], appointment)

    def _act_on(self, intent: str, appointment: tools.AppointmentInfo) -> Answer:
        when = describe(appointment.start.astimezone(self.zone))
        self.d["appointment_id"] = appointment.id
        self.d["service_id"] = appointment.service_id
        if intent == Intent.CONFIRM:
            tools.tool("confirm")(
                clinic=self.clinic, patient=self.conversation.patient, appointment_id=appointment.id
            )
            self.d = {}
            return Answer(
                f"Consulta confirmada: {appointment.service_name}, {when}. Até lá!", intent=intent
            )
        if intent == Intent.CANCEL:
            self.d["step"] = "cancel_confirm"
            question = f"Cancelar {appointment.service_name} de {when}?\n1. Sim\n2. Não"
            self.d["question"] = question
            return Answer(question, options=["Sim", "Não"], intent=intent)
        # Reschedule: same service (and professional), a new day.
        self.d["intent"] = Intent.RESCHEDULE
        self.d["step"] = "day"
        question = (
            f"Sua consulta é {when}. Para qual dia e horário quer remarcar? (ex.: "
            "“sexta que vem à tarde”, “dia 12 às 15h”)"
        )
        self.d["question"] = question
        # The same professional (a patient follows their therapist).
        self.d["professional_id"] = appointment.professional_id
        return Answer(question, intent=intent)

    def _step_cancel_confirm(self) -> Answer | None:
        if self.norm in NO or self.norm.startswith("nao"):
            self.d = {}
            return Answer("Tudo bem, sua consulta continua marcada.", intent=Intent.CANCEL)
        if not (
            self.norm in YES
            or self.norm.startswith("sim")
            or classify(self.text).intent in (Intent.CONFIRM, Intent.CANCEL)
        ):
            return None
        try:
            info = tools.tool("cancel")(
                clinic=self.clinic,
                patient=self.conversation.patient,
                appointment_id=self.d["appointment_id"],
            )
        except tools.ToolRefused as exc:
            return self._handover(
                "cancel_refused", f"{exc} Vou pedir para a equipe falar com você."
            )
        self.d = {}
        return Answer(
            f"Consulta cancelada ({info.service_name}, "
            f"{describe(info.start.astimezone(self.zone))}). Quer marcar outro horário? "
            "É só dizer “quero marcar”.",
            intent=Intent.CANCEL,
        )

    def _upcoming(self) -> Answer:
        self.d = {}
        upcoming = tools.tool("upcoming")(clinic=self.clinic, patient=self.conversation.patient)
        if not upcoming:
            return Answer(
                "Você não tem consultas marcadas. Quer agendar? É só dizer “quero marcar”.",
                intent=Intent.MY_APPOINTMENTS,
            )
        lines = [
            f"{describe(a.start.astimezone(self.zone))} – {a.service_name} com "
            f"{a.professional_name}"
            for a in upcoming
        ]
        return Answer(
            "Suas próximas consultas:\n" + "\n".join(lines), intent=Intent.MY_APPOINTMENTS
        )

    def _package(self) -> Answer:
        self.d = {}
        if not tools.has_tool("package_balance"):
            return self._handover("no_tool", "Vou pedir para a equipe ver seu pacote.")
        packages = tools.tool("package_balance")(
            clinic=self.clinic, patient=self.conversation.patient
        )
        if not packages:
            return Answer("Não encontrei pacote ativo no seu cadastro.", intent=Intent.PACKAGE)
        lines = [
            f"{p.name}: {p.sessions_left} sessão(ões) restante(s)"
            + (f", válido até {p.expires_on:%d/%m/%Y}" if p.expires_on else "")
            for p in packages
        ]
        return Answer("\n".join(lines), intent=Intent.PACKAGE)

    def _pay(self) -> Answer:
        self.d = {}
        if not tools.has_tool("open_charge"):
            return self._handover("no_tool", "Vou pedir para a equipe te enviar o pagamento.")
        charge = tools.tool("open_charge")(clinic=self.clinic, patient=self.conversation.patient)
        if charge is None:
            return Answer("Não encontrei cobranças em aberto no seu nome. 😊", intent=Intent.PAY)
        parts = [
            f"{charge.description or 'Cobrança'}: {money(charge.amount)}"
            + (f", vence {charge.due_date:%d/%m}" if charge.due_date else "")
        ]
        if charge.pix_code:
            parts.append("PIX copia e cola (copie a mensagem abaixo):")
        if charge.link:
            parts.append(f"Link de pagamento: {charge.link}")
        text = "\n".join(parts)
        if charge.pix_code:
            text = f"{text}\n\n{charge.pix_code}"
        return Answer(text, intent=Intent.PAY)

    # --- helpers -----------------------------------------------------------------------
    def _when(self) -> When | None:
        """The day and time the message names: the rules' reading, else the model's."""
        when = parse_when(self.text, today=self.today)
        if when is not None or self.hint is None:
            return when
        entities = self.hint.entities
        day = date.fromisoformat(entities["date"]) if entities.get("date") else None
        moment = time.fromisoformat(entities["time"]) if entities.get("time") else None
        period = {"morning": "morning", "afternoon": "afternoon", "evening": "evening"}.get(
            entities.get("period", "")
        )
        if day is None and moment is None and period is None:
            return None
        if day is not None and not self.today <= day <= self.today + timedelta(days=366):
            return None  # a model's impossible day is no day
        return When(day, day, moment, period)

    def _number(self, count: int) -> int | None:
        """The option number the patient answered ("2", "opção 2", "a 2"), if in range."""
        found = re.fullmatch(r"(?:opcao |opção |numero |a |o |op )?(\d{1,2})[ .)]*", self.norm)
        if not found:
            words = {
                "um": 1,
                "uma": 1,
                "primeiro": 1,
                "primeira": 1,
                "dois": 2,
                "duas": 2,
                "segundo": 2,
                "segunda opcao": 2,
                "tres": 3,
                "terceiro": 3,
                "quatro": 4,
                "cinco": 5,
            }
            value = words.get(self.norm)
        else:
            value = int(found.group(1))
        if value is None and self.hint is not None:
            value = self.hint.entities.get("choice")
        if value is None or not 1 <= value <= count:
            return None
        return value


def assistant_answer(
    *,
    conversation: Conversation,
    settings: AssistantSettings,
    text: str,
    now,
    channel: str,
    hint=None,
    kb=None,
    defer_to_model: bool = False,
) -> Answer:
    """The assistant's answer to ``text`` in ``conversation`` (whose state and dialogue it
    updates in memory; the caller saves). Runs the tools in savepoints of the caller's
    transaction. With ``defer_to_model``, a message the rules do not understand gets no
    answer now: ``Answer(intent=MODEL_PENDING, handled=False)`` and nothing changed."""
    turn = Turn(
        conversation=conversation,
        settings=settings,
        text=text,
        now=now,
        channel=channel,
        hint=hint,
        kb=kb,
        defer_to_model=defer_to_model,
    )
    try:
        with transaction.atomic():
            return turn.run()
    except NeedsModel:
        return Answer("", intent=MODEL_PENDING, handled=False)
