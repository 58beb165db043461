"""What a patient wants, read by rules (no model): safety first, then intents by keyword
with a fuzzy match for typos.

:func:`safety_check` runs before anything else, in every mode (with or without an LLM):
an emergency gets SAMU 192 / CVV 188 at once, a clinical question a fixed kind answer and
a person. :func:`classify` then names the intent, or ``unknown``.

The labelled corpus in ``tests/assistant/test_intents.py`` measures it; the confusions
that remain are listed in docs/assistant.md.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .normalize import normalize, similar


class Intent:
    BOOK = "book"
    RESCHEDULE = "reschedule"
    CANCEL = "cancel"
    CONFIRM = "confirm"
    MY_APPOINTMENTS = "my_appointments"
    PRICES = "prices"
    PACKAGE = "package"
    PAY = "pay"
    ADDRESS_HOURS = "address_hours"
    HUMAN = "human"
    OPT_OUT = "opt_out"
    GREETING = "greeting"
    THANKS = "thanks"
    UNKNOWN = "unknown"

    ALL = (
        BOOK,
        RESCHEDULE,
        CANCEL,
        CONFIRM,
        MY_APPOINTMENTS,
        PRICES,
        PACKAGE,
        PAY,
        ADDRESS_HOURS,
        HUMAN,
        OPT_OUT,
        GREETING,
        THANKS,
        UNKNOWN,
    )


class Safety:
    EMERGENCY = "emergency"
    SUICIDE = "suicide"
    CLINICAL = "clinical"


# --- Safety: decided before any model is called --------------------------------------------
#: Words of an emergency: SAMU 192 at once.
EMERGENCY_PATTERNS = [
    r"\bdor(?:es)? (?:forte |muito forte )?no peito\b",
    r"\bdor(?:es)? no coracao\b",
    r"\baperto no peito\b",
    r"\bpeito (?:apertado|doendo)\b",
    r"\b(?:falta|faltando) (?:de )?ar\b",
    r"\bsem ar\b",
    r"\bnao (?:consigo|to conseguindo|estou conseguindo) respirar\b",
    r"\bdificuldade (?:de|para|pra) respirar\b",
    r"\brespirar (?:direito|com dificuldade)\b",
    r"\bdesmai(?:ou|ei|ando|o)\b",
    r"\bdesacordad[oa]\b",
    r"\binconsciente\b",
    r"\bconvuls(?:ao|ionando|ionou)\b",
    r"\bataque epilepti",
    r"\binfarto\b",
    r"\benfarte\b",
    r"\bavc\b",
    r"\bderrame\b",
    r"\bboca torta\b",
    r"\bsangrando muito\b",
    r"\bhemorragia\b",
    r"\bmuito sangue\b",
    r"\bengoliu\b",
    r"\bengasgad[oa]\b",
    r"\benvenenad[oa]\b",
    r"\boverdose\b",
    r"\bacidente\b",
    r"\bemergencia\b",
    r"\burgencia\b",
    r"\bsocorro\b",
    r"\bvomitando sangue\b",
    r"\bperdeu (?:a )?consciencia\b",
    r"\bnao (?:acorda|responde)\b",
]
#: Words of suicide risk: CVV 188 (and SAMU 192) at once.
SUICIDE_PATTERNS = [
    r"\bsuicid",
    r"\bme matar\b",
    r"\bquero morrer\b",
    r"\bvontade de morrer\b",
    r"\bacabar com (?:a )?(?:minha )?vida\b",
    r"\btirar (?:a )?(?:minha )?(?:propria )?vida\b",
    r"\bnao quero mais viver\b",
    r"\bsem vontade de viver\b",
    r"\bme machucar\b",
    r"\bme cortar\b",
    r"\bautomutila",
]
#: A clinical question: no diagnosis, dosage or advice — a fixed answer and a person.
CLINICAL_PATTERNS = [
    r"\b(?:posso|devo|pode) (?:tomar|usar|misturar|beber)\b",
    r"\bquant[oa]s? (?:comprimidos?|gotas|mg|ml|capsulas?)\b",
    r"\b(?:qual|que) (?:remedio|medicamento|antibiotico|pomada)\b",
    r"\bremedio (?:para|pra|pro)\b",
    r"\bdose\b",
    r"\bdosagem\b",
    r"\b(?:e|sera que e) normal\b",
    r"\bsera que (?:eu )?(?:tenho|estou com)\b",
    r"\bo que (?:eu )?(?:tenho|pode ser)\b",
    r"\bque doenca\b",
    r"\bdiagnostico\b",
    r"\b(?:estou|to|tou|ando) com (?:febre|dor|tosse|manchas?|coceira|diarreia|enjoo|tontura)\b",
    r"\bsintomas?\b",
    r"\bresultado do (?:meu )?exame\b",
    r"\bexame (?:deu|veio)\b",
    r"\b(?:ta|esta) inflamad",
    r"\binfeccionad",
    r"\bgravida\b.*\b(?:tomar|pode|posso)\b",
    r"\b(?:tomar|posso)\b.*\bgravida\b",
    r"\bpressao (?:alta|baixa)\b.*\b(?:fazer|tomar|faco)\b",
    r"\bcomo (?:trato|tratar|curar|curo)\b",
    r"\bo que (?:eu )?(?:faco|fazer) (?:com|para|pra) (?:a |o )?(?:dor|febre|tosse|ferida)\b",
]

_EMERGENCY = [re.compile(p) for p in EMERGENCY_PATTERNS]
_SUICIDE = [re.compile(p) for p in SUICIDE_PATTERNS]
_CLINICAL = [re.compile(p) for p in CLINICAL_PATTERNS]


def safety_check(text: str) -> str | None:
    """``Safety.SUICIDE``, ``Safety.EMERGENCY``, ``Safety.CLINICAL`` or ``None``. Runs on
    every message before any rule or model answers it."""
    norm = normalize(text)
    if any(p.search(norm) for p in _SUICIDE):
        return Safety.SUICIDE
    if any(p.search(norm) for p in _EMERGENCY):
        return Safety.EMERGENCY
    if any(p.search(norm) for p in _CLINICAL):
        return Safety.CLINICAL
    return None


# --- Intents -------------------------------------------------------------------------------
#: Per intent: phrases (matched in order, whole words) and single keywords (matched with
#: typos). A phrase is worth more than a keyword; the best score wins.
RULES: dict[str, dict[str, list[str]]] = {
    Intent.OPT_OUT: {
        "phrases": [
            "sair",
            "parar",
            "stop",
            "descadastrar",
            "nao quero (?:mais )?receber",
            "para de (?:me )?mandar",
            "pare de (?:me )?mandar",
            "parem de (?:me )?mandar",
            "nao (?:me )?mande mais",
            "nao mandem mais",
            "tirar? (?:meu numero|da lista)",
            "remover? (?:meu numero|da lista)",
            "me tira(?:r)? (?:da lista|daqui|dessa lista)",
            "cancelar (?:as )?(?:mensagens|inscricao|notificacoes)",
            "nao quero mais (?:mensagens|msg|mensagem)",
        ],
        "words": ["descadastrar", "descadastre"],
    },
    Intent.HUMAN: {
        "phrases": [
            "falar com (?:um |uma |alguem|algum|a |o )?(?:atendente|pessoa|humano|recepcao|"
            "recepcionista|secretaria|gente|alguem|funcionari[oa]|doutor[a]?|medic[oa])",
            "quero (?:um |uma )?(?:atendente|humano|pessoa)",
            "atendimento humano",
            "pessoa de verdade",
            "pessoa real",
            "(?:voce )?(?:e|eh) (?:um )?robo",
            "nao (?:quero|gosto de) (?:falar com )?robo",
            "alguem (?:me )?(?:atende|responde)",
            "me liga(?:m)?",
            "pode(?:m)? me ligar",
            "liga(?:r)? (?:para|pra) mim",
            "nao (?:estou|to) entendendo",
            "voce nao entende",
            "nao entendeu",
            "chama (?:alguem|a recepcao|a atendente)",
            "transfer[ei]",
        ],
        "words": ["atendente", "humano", "recepcionista", "secretaria"],
    },
    Intent.CANCEL: {
        "phrases": [
            "cancela(?:r|mento)?",
            "desmarca(?:r)?",
            "nao vou (?:poder )?(?:ir|comparecer)",
            "nao (?:vou )?(?:poderei|posso) (?:ir|comparecer)",
            "nao consigo (?:ir|comparecer)",
            "nao vou conseguir (?:ir|comparecer)",
            "nao vai dar (?:pra|para) (?:ir|mim)",
            "nao vai dar",
            "vou faltar",
            "tira(?:r)? (?:minha|a) consulta",
            "quero desistir",
            "desisto",
        ],
        "words": ["cancelar", "cancela", "cancelamento", "desmarcar", "desmarca"],
    },
    Intent.RESCHEDULE: {
        "phrases": [
            "remarca(?:r|cao)?",
            "reagenda(?:r|mento)?",
            "mudar (?:o |a |meu |minha )?(?:horario|dia|data|consulta|sessao)",
            "trocar (?:o |a |meu |minha )?(?:horario|dia|data|consulta|sessao)",
            "alterar (?:o |a |meu |minha )?(?:horario|dia|data|consulta|sessao)",
            "mudar (?:para|pra) outro",
            "passar (?:para|pra) outro dia",
            "mudar (?:para|pra) (?:a )?(?:tarde|manha|noite|outr[oa])",
            "outro (?:dia|horario)",
            "adiar",
            "antecipar",
            "mudar de horario",
        ],
        "words": ["remarcar", "remarca", "reagendar", "remarcacao", "reagendamento", "adiar"],
    },
    Intent.CONFIRM: {
        "phrases": [
            "confirm(?:o|ar|ado|ada|ando|a)",
            "(?:eu )?vou sim",
            "^(?:eu )?vou$",
            "estarei (?:la|presente)",
            "vou estar (?:la|presente)",
            "pode confirmar",
            "(?:esta|ta) confirmad[oa]",
            "(?:eu )?vou comparecer",
            "(?:eu )?irei",
            "^sim$",
            "^s$",
            "^ok$",
            "^certo$",
            "combinado",
            "presenca confirmada",
        ],
        "words": ["confirmo", "confirmar", "confirmado", "confirmada"],
    },
    Intent.MY_APPOINTMENTS: {
        "phrases": [
            "(?:qual|quais|que) (?:e |sao )?(?:o |os )?(?:dia|dias|horario|horarios|data) "
            "(?:da|das|de) (?:minha|minhas|meu|meus)",
            "minha(?:s)? (?:proxima(?:s)? )?(?:consulta|consultas|sessao|sessoes|agendamento)",
            "meu(?:s)? (?:proximo(?:s)? )?(?:horario|horarios|agendamento|agendamentos)",
            "quando (?:e|sera|vai ser) (?:a )?(?:minha|meu)",
            "(?:tenho|eu tenho) (?:consulta|horario|sessao|algo) marcad",
            "(?:tenho|eu tenho) (?:alguma )?(?:consulta|sessao) (?:marcada|agendada)",
            "que horas (?:e|eh|sera) (?:a )?minha",
            "esqueci (?:o |a )?(?:horario|dia|data)",
            "(?:estou|to|tou) marcad[oa]",
            "ver (?:meus|minhas) (?:horarios|consultas|agendamentos)",
            "lembra(?:r)? (?:o |do )?(?:meu )?horario",
        ],
        "words": [],
    },
    Intent.PACKAGE: {
        "phrases": [
            "saldo",
            "quantas sess(?:oes|ao) (?:eu )?(?:tenho|ainda|faltam|restam|sobra)",
            "sess(?:oes|ao) (?:restantes|que faltam|que restam|que sobraram|disponiveis)",
            "(?:meu|do meu|o meu) pacote",
            "quantas (?:ainda )?(?:me )?(?:faltam|restam|sobraram)",
            "ainda tenho sess(?:ao|oes)",
            "pacote (?:acaba|vence|expira)",
            "validade do (?:meu )?pacote",
            "sobrou quantas",
        ],
        "words": ["saldo", "pacote"],
    },
    Intent.PAY: {
        "phrases": [
            "pix",
            "chave pix",
            "(?:quero|como|onde|posso|queria) (?:fazer o |faco o |efetuar o )?paga(?:r|mento)",
            "pagar (?:a |o |minha |meu )?(?:consulta|conta|sessao|boleto|divida|debito|parcela)",
            "link (?:de|do|para|pra) pagamento",
            "link (?:para|pra) pagar",
            "copia e cola",
            "(?:onde|como) pago",
            "boleto",
            "(?:quanto|o que) (?:eu )?devo",
            "estou devendo",
            "to devendo",
            "segunda via",
            "conta em aberto",
            "debito em aberto",
            "cobranca",
        ],
        "words": ["pix", "boleto", "pagamento", "pagar"],
    },
    Intent.PRICES: {
        "phrases": [
            "quanto (?:custa|e|eh|fica|sai|cobra(?:m)?|ta|esta)",
            "qual (?:e |eh )?(?:o )?(?:valor|preco)",
            "(?:valor|valores|preco|precos) (?:da|do|de|das|dos)",
            "tabela de preco",
            "(?:que|quais) (?:servicos|tratamentos|especialidades|procedimentos)",
            "voces (?:fazem|atendem|tem|oferecem)",
            "(?:faz|fazem|tem) (?:fisioterapia|pilates|acupuntura|massagem|nutricionista|psicolog)",
            "aceita(?:m)? (?:convenio|plano|unimed|amil|cartao)",
            "convenio",
            "plano de saude",
            "particular",
            "parcel(?:a|am|ar)",
        ],
        "words": ["valor", "valores", "preco", "precos", "custa", "servicos", "convenio"],
    },
    Intent.ADDRESS_HOURS: {
        "phrases": [
            "(?:qual|onde) (?:e |eh |fica )?(?:o )?(?:endereco|localizacao)",
            "onde (?:fica|ficam|e|eh|voces ficam)",
            "(?:como|pra|para) cheg(?:ar|o|a)",
            "endereco",
            "localizacao",
            "(?:tem|possui) estacionamento",
            "(?:que|qual) horario (?:voces )?"
            "(?:abre|abrem|fecha|fecham|funciona|funcionam|atendem)",
            "horario de (?:funcionamento|atendimento)",
            "(?:abre|abrem|funciona|funcionam|atendem) (?:aos |no |de |sabado|domingo|feriado)",
            "ate que horas",
            "que horas (?:abre|abrem|fecha|fecham)",
            "(?:esta|estao|ta) aberto",
            "qual (?:o )?telefone",
            "perto de",
        ],
        "words": ["endereco", "localizacao", "estacionamento", "funcionamento"],
    },
    Intent.BOOK: {
        "phrases": [
            "marca(?:r|cao)?",
            "agenda(?:r|mento)?",
            "(?:quero|queria|gostaria de|preciso|posso|da para|tem como) (?:de )?(?:uma |um )?"
            "(?:consulta|sessao|horario|avaliacao|atendimento)",
            "tem (?:horario|vaga|agenda)",
            "(?:horario|horarios|vaga|vagas) (?:disponive(?:l|is)|livre(?:s)?)",
            "(?:primeira|1a) (?:consulta|vez|sessao)",
            "consultar com",
            "atendimento (?:com|para|pra)",
            "(?:quero|queria|gostaria de) (?:fazer|comecar|iniciar)",
            "(?:quando|que dia) (?:tem|teria|voces tem)",
            "encaix\\w*",
        ],
        "words": ["marcar", "agendar", "agendamento", "consulta", "horario", "vaga", "sessao"],
    },
    Intent.THANKS: {
        "phrases": [
            "obrigad[oa]",
            "muito obrigad",
            "valeu",
            "agradec\\w*",
            "grat[oa]",
            "brigad",
            "thanks",
            "perfeito",
            "^blz$",
            "^beleza$",
            "^show$",
            "otimo",
            "^tudo certo$",
        ],
        "words": ["obrigado", "obrigada", "valeu", "agradeco"],
    },
    Intent.GREETING: {
        "phrases": [
            "^oi",
            "^ola",
            "^opa",
            "^e ai",
            "^bom dia",
            "^boa tarde",
            "^boa noite",
            "^hello",
            "^alo",
            "tudo bem",
            "^eai",
        ],
        "words": ["oi", "ola", "bom", "boa"],
    },
}

#: When two intents score the same, the first in this order wins (the more specific one).
PRIORITY = [
    Intent.OPT_OUT,
    Intent.HUMAN,
    Intent.CANCEL,
    Intent.RESCHEDULE,
    Intent.PAY,
    Intent.PACKAGE,
    Intent.MY_APPOINTMENTS,
    Intent.ADDRESS_HOURS,
    Intent.PRICES,
    Intent.CONFIRM,
    Intent.BOOK,
    Intent.THANKS,
    Intent.GREETING,
]
_COMPILED = {
    intent: [re.compile(r"(?:^|\b)" + p + r"(?:\b|$)") for p in rules["phrases"]]
    for intent, rules in RULES.items()
}
#: Common words a typo match would mistake for a keyword ("preciso" is no "preco").
NOT_TYPOS = frozenset({"preciso", "precisa", "precisava", "precisar", "consigo", "consegue"})
_GREETING_ONLY = {
    "oi",
    "ola",
    "opa",
    "bom",
    "boa",
    "dia",
    "tarde",
    "noite",
    "tudo",
    "bem",
    "e",
    "ai",
}


@dataclass(frozen=True)
class Reading:
    """The rules' reading of a message: the intent and how sure (0–1)."""

    intent: str
    confidence: float
    scores: dict


def classify(text: str) -> Reading:
    """The intent of ``text`` by the rules: each phrase found scores 2, each keyword (or
    its typo) 1; greetings and thanks only win when nothing else is asked."""
    norm = normalize(text)
    words = norm.split()
    scores: dict[str, float] = {}
    for intent in PRIORITY:
        score = 0.0
        for pattern in _COMPILED[intent]:
            if pattern.search(norm):
                score += 2
        for known in RULES[intent]["words"]:
            if any(
                word == known or (len(word) >= 5 and word not in NOT_TYPOS and similar(word, known))
                for word in words
            ):
                score += 1
        if score:
            scores[intent] = score
    # Greetings and thanks are what is left when nothing else is asked ("oi, quero marcar"
    # is a booking).
    asked = {k: v for k, v in scores.items() if k not in (Intent.GREETING, Intent.THANKS)}
    if Intent.OPT_OUT in asked:
        # An opt-out is honoured whatever else the message says ("cancelar as mensagens").
        return Reading(Intent.OPT_OUT, 1.0, scores)
    if asked:
        best = max(asked.values())
        intent = next(i for i in PRIORITY if asked.get(i) == best)
        total = sum(asked.values())
        return Reading(intent, best / total if total else 0.0, scores)
    if Intent.THANKS in scores:
        return Reading(Intent.THANKS, 1.0, scores)
    if Intent.GREETING in scores and set(words) <= _GREETING_ONLY | {"sofia", "tudo", "bem"}:
        return Reading(Intent.GREETING, 1.0, scores)
    if Intent.GREETING in scores:
        return Reading(Intent.GREETING, 0.6, scores)
    return Reading(Intent.UNKNOWN, 0.0, scores)
