"""Text as patients write it, made comparable: lower case, no accents, no punctuation but
what dates and times need (``/``, ``:``), the usual WhatsApp abbreviations spelled out
("vc" → "voce", "qro" → "quero", "amnh" → "amanha"), and a fuzzy word match for typos."""

from __future__ import annotations

import re
import unicodedata
from difflib import SequenceMatcher
from functools import lru_cache

#: Abbreviations and spellings of chat Portuguese → the word the rules know.
ABBREVIATIONS = {
    "vc": "voce",
    "vcs": "voces",
    "voce": "voce",
    "ce": "voce",
    "qro": "quero",
    "qero": "quero",
    "kero": "quero",
    "qria": "queria",
    "keria": "queria",
    "qeria": "queria",
    "q": "que",
    "oq": "o que",
    "hj": "hoje",
    "hje": "hoje",
    "amnh": "amanha",
    "amanhan": "amanha",
    "amanh": "amanha",
    "amn": "amanha",
    "dps": "depois",
    "dpois": "depois",
    "pra": "para",
    "pro": "para o",
    "p": "para",
    "tb": "tambem",
    "tbm": "tambem",
    "obg": "obrigado",
    "obgd": "obrigado",
    "obgda": "obrigada",
    "brigado": "obrigado",
    "brigada": "obrigada",
    "vlw": "valeu",
    "blz": "beleza",
    "td": "tudo",
    "tdb": "tudo bem",
    "pq": "porque",
    "n": "nao",
    "nn": "nao",
    "naum": "nao",
    "msg": "mensagem",
    "msgs": "mensagens",
    "min": "minuto",
    "hr": "hora",
    "hrs": "horas",
    "cmg": "comigo",
    "agnd": "agendar",
    "agend": "agendar",
    "consult": "consulta",
    "cnsulta": "consulta",
    "sabado": "sabado",
    "manha": "manha",
    "mto": "muito",
    "mt": "muito",
    "eh": "e",
    "ta": "esta",
    "tá": "esta",
    "to": "estou",
    "tô": "estou",
    "dnv": "de novo",
    "vdd": "verdade",
    "qnd": "quando",
    "qdo": "quando",
    "qto": "quanto",
    "qnto": "quanto",
    "qt": "quanto",
    "ola": "ola",
    "oi": "oi",
    "oie": "oi",
    "oii": "oi",
    "oiii": "oi",
    "olaa": "ola",
    "bom": "bom",
    "bomdia": "bom dia",
    "boatarde": "boa tarde",
    "boanoite": "boa noite",
    "pfv": "por favor",
    "pf": "por favor",
    "pls": "por favor",
    "por favor": "por favor",
    "ñ": "nao",
}


def strip_accents(text: str) -> str:
    text = unicodedata.normalize("NFKD", text)
    return "".join(c for c in text if not unicodedata.combining(c))


_KEEP = re.compile(r"[^\w\s/:.,-]")


def normalize(text: str) -> str:
    """``"Qro marcar p/ amanhã de manhã!!"`` → ``"quero marcar para amanha de manha"``.
    Keeps ``/``, ``:``, ``-``, ``.`` and ``,`` between digits (dates and times)."""
    text = (text or "").replace("\u00ba", "o").replace("\u00aa", "a").lower()
    text = text.replace("p/", "para ").replace("ñ", "nao")
    text = strip_accents(text)
    text = _KEEP.sub(" ", text)
    # Punctuation between digits stays (12/03, 14:30, 12.03), elsewhere it goes.
    text = re.sub(r"(?<!\d)[/:.,-]|[/:.,-](?!\d)", " ", text)
    words = []
    for word in text.split():
        # Repeated letters of emphasis: "oiiii" → "oi", "simmm" → "sim" (not in numbers).
        if not word.isdigit():
            word = re.sub(r"([a-z])\1{2,}", r"\1", word)
        words.append(ABBREVIATIONS.get(word, word))
    return " ".join(" ".join(words).split())


@lru_cache(maxsize=4096)
def similar(word: str, known: str) -> bool:
    """A typo of ``known``: close enough for words of five letters or more ("cancelr",
    "remarca", "agenda"), exact for shorter ones (where one letter changes the meaning)."""
    if word == known:
        return True
    if len(known) < 5 or abs(len(word) - len(known)) > 2:
        return False
    return SequenceMatcher(None, word, known).ratio() >= 0.8
