"""The catalogue of named message templates: what each says by default, in pt-BR.

Every message a patient receives is rendered from one of these (DESIGN.md "Messaging and
consent"). A clinic may override the text of any of them in the admin
(``MessageTemplate``); the name, the purpose (utility or marketing) and the variables are
fixed here, in code, because the code that sends a template supplies its variables.

Texts are Django templates rendered without HTML escaping (WhatsApp and SMS are plain
text). ``variables`` lists the names a text may use, in the order of the parameters of the
approved WhatsApp (Meta) template the message maps to: Meta's body parameters are
positional ({{1}}, {{2}} …), so the order here is the contract with the template
registered at Meta. The default texts are pt-BR because they go to patients in Brazil;
a clinic writes its own text in the admin for anything else.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.template import Context, Engine, TemplateSyntaxError
from django.utils.translation import gettext_lazy as _

from clinic.choices import ConsentPurpose

#: Plain-text rendering: no autoescape (an "&" in a clinic's name stays "&").
ENGINE = Engine(autoescape=False)

UTILITY = ConsentPurpose.UTILITY
MARKETING = ConsentPurpose.MARKETING

#: What a delivery whose outcome is unknown (a worker killed mid-send, a provider that took
#: the request and never answered) does when the provider cannot be asked what happened:
#: at most once — never resent, the message is marked "uncertain" and shown to the desk (a
#: second reminder or greeting annoys, and costs); at least once — sent again (a sign-in code
#: that never arrives locks the patient out, one too many does no harm).
AT_MOST_ONCE = "at_most_once"
AT_LEAST_ONCE = "at_least_once"

#: Variables every template may use, whatever sends it.
COMMON_VARIABLES = ("first_name", "clinic", "clinic_phone")

#: What the variables mean, for the admin's help and preview.
VARIABLE_HELP = {
    "first_name": _("the patient's first name (or social name)"),
    "clinic": _("the clinic's name"),
    "clinic_phone": _("the clinic's phone"),
    "date": _("the appointment's date, e.g. 24/11/2026"),
    "weekday": _("the appointment's weekday, e.g. terça-feira"),
    "time": _("the appointment's time in the clinic's time zone, e.g. 14:30"),
    "professional": _("the professional's name"),
    "service": _("the service's name"),
    "address": _("the clinic's address"),
    "preparation": _("the service's preparation instructions"),
    "confirm_link": _("one-click link that confirms the appointment"),
    "cancel_link": _("one-click link that cancels the appointment"),
    "reschedule_link": _("link to choose another time"),
    "claim_link": _("link that books the offered slot"),
    "expires": _("until when an offer stands, e.g. 14:30"),
    "code": _("a one-time sign-in code"),
    "minutes": _("how many minutes a code or offer is valid"),
    "amount": _("an amount in reais, e.g. R$ 150,00"),
    "due_date": _("a due date"),
    "payment_link": _("link to pay"),
    "package": _("the package's name"),
    "remaining": _("sessions left in a package"),
    "hours": _("the cancellation window, in hours"),
    "description": _("what a payment was for"),
    "method": _("how it was paid, e.g. PIX"),
    "text": _("free text written by reception"),
}

#: Sample values: the admin's preview renders texts with these.
SAMPLE_CONTEXT = {
    "first_name": "Maria",
    "clinic": "Clínica Exemplo",
    "clinic_phone": "(11) 3333-4444",
    "date": "24/11/2026",
    "weekday": "terça-feira",
    "time": "14:30",
    "professional": "Dra. Ana Souza",
    "service": "Fisioterapia",
    "address": "Rua das Flores, 100 — Centro, São Paulo",
    "preparation": "Venha com roupas confortáveis.",
    "confirm_link": "https://clinica.example/agenda/l/confirm/…",
    "cancel_link": "https://clinica.example/agenda/l/cancel/…",
    "reschedule_link": "https://clinica.example/agenda/l/reschedule/…",
    "claim_link": "https://clinica.example/agenda/offer/…",
    "expires": "15:00",
    "code": "482913",
    "minutes": "10",
    "amount": "R$ 150,00",
    "due_date": "30/11/2026",
    "payment_link": "https://clinica.example/pagar/…",
    "package": "Pacote 10 sessões",
    "remaining": "3",
    "hours": "24",
    "description": "Sessão de fisioterapia",
    "method": "PIX",
    "text": "Olá! Podemos ajudar?",
}


@dataclass(frozen=True)
class TemplateSpec:
    """One named template: its purpose, variables, default texts and its Meta mapping."""

    name: str
    label: str
    purpose: str
    body: str
    subject: str = ""  # e-mail subject
    variables: tuple[str, ...] = ()  # in the order of the Meta template's parameters
    meta_name: str = ""  # approved WhatsApp template; "" = free text (replies, 24 h window)
    meta_language: str = "pt_BR"
    #: When the outcome of a send is unknown: ``AT_MOST_ONCE`` or ``AT_LEAST_ONCE``.
    delivery: str = AT_MOST_ONCE
    extra: dict = field(default_factory=dict)

    @property
    def allowed_variables(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys((*self.variables, *COMMON_VARIABLES)))


_APPOINTMENT_VARS = ("first_name", "date", "time", "professional", "service")

CATALOGUE: dict[str, TemplateSpec] = {
    spec.name: spec
    for spec in [
        TemplateSpec(
            name="lembrete_consulta",
            label=_("Reminder, 48 hours before"),
            purpose=UTILITY,
            variables=(
                *_APPOINTMENT_VARS,
                "weekday",
                "address",
                "preparation",
                "confirm_link",
                "cancel_link",
            ),
            meta_name="lembrete_consulta_v2",
            subject="Lembrete: sua consulta em {{ date }} às {{ time }}",
            body=(
                "Olá, {{ first_name }}! Lembramos da sua consulta de {{ service }} com "
                "{{ professional }} na {{ weekday }}, {{ date }}, às {{ time }}.\n"
                "{% if address %}Endereço: {{ address }}\n{% endif %}"
                "{% if preparation %}Preparo: {{ preparation }}\n{% endif %}"
                "\nResponda 1 para CONFIRMAR, 2 para REMARCAR ou 3 para CANCELAR."
                "{% if confirm_link %}\nConfirmar: {{ confirm_link }}{% endif %}"
                "{% if cancel_link %}\nCancelar: {{ cancel_link }}{% endif %}"
            ),
        ),
        TemplateSpec(
            name="lembrete_vespera",
            label=_("Reminder on the eve, unconfirmed appointments"),
            purpose=UTILITY,
            variables=(*_APPOINTMENT_VARS, "address", "confirm_link", "cancel_link"),
            meta_name="lembrete_vespera_v1",
            subject="Amanhã: {{ service }} às {{ time }}",
            body=(
                "Olá, {{ first_name }}! Sua consulta de {{ service }} com {{ professional }} "
                "é amanhã, {{ date }}, às {{ time }}, e ainda não foi confirmada.\n"
                "Responda 1 para CONFIRMAR, 2 para REMARCAR ou 3 para CANCELAR."
                "{% if confirm_link %}\nConfirmar: {{ confirm_link }}{% endif %}"
                "{% if cancel_link %}\nCancelar: {{ cancel_link }}{% endif %}"
            ),
        ),
        TemplateSpec(
            name="confirmacao",
            label=_("Booking confirmation"),
            purpose=UTILITY,
            variables=(*_APPOINTMENT_VARS, "address", "preparation", "cancel_link"),
            meta_name="confirmacao_v1",
            subject="Consulta agendada: {{ date }} às {{ time }}",
            body=(
                "Olá, {{ first_name }}! Sua consulta de {{ service }} com {{ professional }} "
                "está agendada para {{ date }} às {{ time }}."
                "{% if address %}\nEndereço: {{ address }}{% endif %}"
                "{% if preparation %}\nPreparo: {{ preparation }}{% endif %}"
                "{% if cancel_link %}\nPrecisa cancelar? {{ cancel_link }}{% endif %}"
            ),
        ),
        TemplateSpec(
            name="falta_consulta",
            label=_("No-show follow-up"),
            purpose=UTILITY,
            variables=(*_APPOINTMENT_VARS, "clinic_phone"),
            meta_name="falta_consulta_v1",
            subject="Sentimos sua falta",
            body=(
                "Olá, {{ first_name }}. Sentimos sua falta na consulta de {{ service }} de "
                "{{ date }} às {{ time }}. Quer marcar um novo horário? Responda esta "
                "mensagem{% if clinic_phone %} ou ligue {{ clinic_phone }}{% endif %}."
            ),
        ),
        TemplateSpec(
            name="vaga_disponivel",
            label=_("Waitlist: a slot is free"),
            purpose=UTILITY,
            variables=(*_APPOINTMENT_VARS, "claim_link", "expires"),
            meta_name="vaga_disponivel_v1",
            subject="Abriu um horário: {{ date }} às {{ time }}",
            body=(
                "Olá, {{ first_name }}! Abriu um horário de {{ service }} com "
                "{{ professional }} em {{ date }} às {{ time }}. Quer? Reserve pelo link "
                "até {{ expires }}: {{ claim_link }}\nQuem reservar primeiro fica com a vaga."
            ),
        ),
        TemplateSpec(
            name="pacote_vencendo",
            label=_("Package about to expire"),
            purpose=UTILITY,
            variables=("first_name", "package", "remaining", "due_date"),
            meta_name="pacote_vencendo_v1",
            subject="Seu pacote vence em {{ due_date }}",
            body=(
                "Olá, {{ first_name }}! Seu {{ package }} vence em {{ due_date }} e ainda "
                "tem {{ remaining }} sessão(ões). Agende pelo WhatsApp ou pelo portal."
            ),
        ),
        TemplateSpec(
            name="cobranca",
            label=_("Payment reminder"),
            purpose=UTILITY,
            variables=("first_name", "amount", "due_date", "payment_link"),
            meta_name="cobranca_v1",
            subject="Pagamento pendente de {{ amount }}",
            body=(
                "Olá, {{ first_name }}. Consta um pagamento de {{ amount }} com vencimento "
                "em {{ due_date }}. Pague pelo link: {{ payment_link }}\n"
                "Se já pagou, desconsidere."
            ),
        ),
        TemplateSpec(
            name="recibo",
            label=_("Receipt of a payment"),
            purpose=UTILITY,
            variables=("first_name", "amount", "date", "description", "method"),
            subject="Recibo de pagamento — {{ clinic }}",
            body=(
                "Olá, {{ first_name }}! A {{ clinic }} confirma o recebimento de {{ amount }} "
                "em {{ date }}{% if description %}, referente a {{ description }}{% endif %} "
                "({{ method }}). Obrigado!"
            ),
        ),
        TemplateSpec(
            name="aniversario",
            label=_("Birthday greeting"),
            purpose=MARKETING,
            variables=("first_name",),
            meta_name="aniversario_v1",
            subject="Feliz aniversário, {{ first_name }}!",
            body=(
                "Feliz aniversário, {{ first_name }}! Toda a equipe da {{ clinic }} deseja "
                "um ano de muita saúde. Responda SAIR para não receber mais."
            ),
        ),
        TemplateSpec(
            # loyalty: points about to expire (sent only to patients who opted in)
            name="pontos_expirando",
            label=_("Loyalty points about to expire"),
            purpose=MARKETING,
            variables=("first_name", "points", "due_date", "balance"),
            meta_name="pontos_expirando_v1",
            subject="Seus pontos vencem em {{ due_date }}",
            body=(
                "Olá, {{ first_name }}! {{ points }} dos seus pontos na {{ clinic }} vencem "
                "em {{ due_date }}. Troque-os por um desconto no portal. Responda SAIR para "
                "não receber mais."
            ),
        ),
        TemplateSpec(
            name="reativacao",
            label=_("Reactivation of inactive patients"),
            purpose=MARKETING,
            variables=("first_name",),
            meta_name="reativacao_v1",
            subject="Sentimos sua falta, {{ first_name }}",
            body=(
                "Olá, {{ first_name }}! Faz tempo que não nos vemos na {{ clinic }}. Que tal "
                "agendar um retorno? Responda esta mensagem. Responda SAIR para não "
                "receber mais."
            ),
        ),
        TemplateSpec(
            name="promocao",
            label=_("Promotion"),
            purpose=MARKETING,
            variables=("first_name", "text"),
            meta_name="promocao_v1",
            subject="Novidades da {{ clinic }}",
            body="Olá, {{ first_name }}! {{ text }}\nResponda SAIR para não receber mais.",
        ),
        TemplateSpec(
            name="codigo_acesso",
            label=_("Portal sign-in code"),
            purpose=UTILITY,
            variables=("code", "minutes"),
            meta_name="codigo_acesso_v1",
            # The patient waits for it at the sign-in page: a lost code is worse than two.
            delivery=AT_LEAST_ONCE,
            subject="Seu código de acesso: {{ code }}",
            body=(
                "Seu código de acesso ao portal da {{ clinic }} é {{ code }}. Ele vale por "
                "{{ minutes }} minutos. Não compartilhe este código."
            ),
        ),
        # Answers to a patient's reply: sent inside WhatsApp's 24 h service window, so free
        # text (no Meta template).
        TemplateSpec(
            name="resposta_confirmada",
            label=_("Reply: appointment confirmed"),
            purpose=UTILITY,
            variables=("first_name", "date", "time"),
            body="Obrigado, {{ first_name }}! Sua consulta de {{ date }} às {{ time }} está "
            "confirmada. Até lá!",
        ),
        TemplateSpec(
            name="resposta_cancelada",
            label=_("Reply: appointment cancelled"),
            purpose=UTILITY,
            variables=("first_name", "date", "time", "reschedule_link"),
            body="Pronto, {{ first_name }}: sua consulta de {{ date }} às {{ time }} foi "
            "cancelada. Quando quiser, é só nos chamar para marcar outro horário.",
        ),
        TemplateSpec(
            name="resposta_remarcar",
            label=_("Reply: link to reschedule"),
            purpose=UTILITY,
            variables=("first_name", "date", "time", "reschedule_link"),
            body="Claro, {{ first_name }}! Escolha um novo horário para a consulta de "
            "{{ date }} às {{ time }} por aqui: {{ reschedule_link }}",
        ),
        TemplateSpec(
            name="resposta_fora_prazo",
            label=_("Reply: too late to cancel online"),
            purpose=UTILITY,
            variables=("first_name", "date", "time", "hours"),
            body="{{ first_name }}, a consulta de {{ date }} às {{ time }} não pode mais ser "
            "cancelada por mensagem (prazo de {{ hours }} horas). Avisamos a recepção, "
            "que vai falar com você{% if clinic_phone %}; se preferir, ligue "
            "{{ clinic_phone }}{% endif %}.",
        ),
        TemplateSpec(
            name="resposta_sem_consulta",
            label=_("Reply: no upcoming appointment"),
            purpose=UTILITY,
            variables=("first_name",),
            body="Olá{% if first_name %}, {{ first_name }}{% endif %}! Não encontramos "
            "consulta futura no seu nome. Para agendar, responda esta mensagem que a "
            "recepção fala com você{% if clinic_phone %}, ou ligue {{ clinic_phone }}"
            "{% endif %}.",
        ),
        TemplateSpec(
            name="mensagem_livre",
            label=_("Free text written by reception"),
            purpose=UTILITY,
            variables=("text",),
            body="{{ text }}",
        ),
    ]
}

NAME_CHOICES = [(spec.name, f"{spec.name} — {spec.label}") for spec in CATALOGUE.values()]


def delivery_policy(name: str) -> str:
    """At most or at least once: what an unknown send outcome of ``name`` does (a template
    no longer in the catalogue is never resent)."""
    spec = CATALOGUE.get(name)
    return spec.delivery if spec is not None else AT_MOST_ONCE


class UnknownTemplate(KeyError):
    pass


def spec_for(name: str) -> TemplateSpec:
    try:
        return CATALOGUE[name]
    except KeyError:
        raise UnknownTemplate(name) from None


def template_errors(text: str, *, allowed: tuple[str, ...]) -> list[str]:
    """Why a template text cannot be used: a syntax error, or a variable that the code
    sending it does not supply. Empty when it is fine."""
    try:
        template = ENGINE.from_string(text)
    except TemplateSyntaxError as exc:
        return [str(_("The text has a template error: %(error)s")) % {"error": exc}]
    used = sorted(_variables_in(template.nodelist))
    unknown = [name for name in used if name not in allowed]
    if unknown:
        return [
            str(_("Unknown variables: %(unknown)s. You may use: %(allowed)s."))
            % {
                "unknown": ", ".join("{{ %s }}" % n for n in unknown),  # noqa: UP031
                "allowed": ", ".join("{{ %s }}" % n for n in allowed),  # noqa: UP031
            }
        ]
    return []


def _variables_in(nodelist) -> set[str]:
    """Top-level names of every ``{{ var }}`` and ``{% if var %}`` in a template."""
    from django.template.base import VariableNode
    from django.template.defaulttags import IfNode

    names: set[str] = set()
    for node in nodelist:
        if isinstance(node, VariableNode):
            var = node.filter_expression.var
            lookups = getattr(var, "lookups", None)
            if lookups:
                names.add(lookups[0])
        if isinstance(node, IfNode):
            for condition, _nodelist in node.conditions_nodelists:
                names |= _condition_variables(condition)
        for attr in getattr(node, "child_nodelists", ()):
            child = getattr(node, attr, None)
            if child:
                names |= _variables_in(child)
        if isinstance(node, IfNode):
            for _condition, child in node.conditions_nodelists:
                names |= _variables_in(child)
    return names


def _condition_variables(condition) -> set[str]:
    names: set[str] = set()
    if condition is None:
        return names
    value = getattr(condition, "value", None)
    var = getattr(getattr(value, "var", None), "lookups", None)
    if var:
        names.add(var[0])
    for part in (getattr(condition, "first", None), getattr(condition, "second", None)):
        if part is not None:
            names |= _condition_variables(part)
    return names


def render(text: str, context: dict) -> str:
    """A template text rendered with ``context`` (missing variables render empty)."""
    return ENGINE.from_string(text).render(Context(context, autoescape=False)).strip()
