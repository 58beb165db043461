"""The clinic's knowledge base for the assistant: free-text entries edited in the admin
(FAQ, cancellation and payment policies, address, opening hours), and their retrieval.

Services, prices and packages are NOT here: the assistant reads them from scheduling and
billing at answer time (its tool registry), so a price is never stale text. An entry holds
only what no other table knows.

Retrieval (:func:`knowledge_search`) returns the clinic's active entries that match a
patient's question, best first, each with a score:

- on PostgreSQL, full-text search with the ``portuguese`` configuration (stemming and
  stop words) over ``unaccent``-ed text, OR-ing the question's words (a patient's question
  rarely has every word of an entry), plus trigram word similarity against the title and
  keywords so that typos still find it ("cancelameto");
- elsewhere (SQLite, the embedded default), a small scorer in Python: accent-free words
  minus stop words, a crude Portuguese stem, close matches by ``difflib``; title and
  keywords weigh double.

``knowledge_snippets`` turns results into ``integrations.llm.KnowledgeSnippet`` for
``integrations.llm.answer``, which cites entry ids back.

``knowledge_reply`` is what the assistant calls for a question: the model's grounded answer
when the clinic has one switched on and it answers, otherwise (no model, every model
failing, an answer refused) the best entry's own text when it matches well enough — the
rules' answer — otherwise ``None`` (the assistant offers a person). Either way the reply
names the entries it used (shown to staff).
"""

from __future__ import annotations

import difflib
import re
import unicodedata
from dataclasses import dataclass

from django.db import connection, models
from django.db.models.expressions import RawSQL
from django.utils.translation import gettext_lazy as _

from clinic.kernel.tenancy import ClinicOwned
from integrations.llm import KnowledgeSnippet, answer

#: At most this many entries go to a model (tokens cost; three answer a FAQ).
DEFAULT_LIMIT = 3
#: Below this score an entry is not an answer (PostgreSQL rank + trigram; Python scorer).
MIN_SCORE_POSTGRES = 0.1
MIN_SCORE_PYTHON = 0.25
TRIGRAM_WEIGHT = 0.5
#: Without a model, the best entry is sent as it is only when it matches this well (the
#: Python scorer's scale; on PostgreSQL the rank is rescaled, see ``_confident``).
RULES_MIN_SCORE_PYTHON = 0.5
RULES_MIN_SCORE_POSTGRES = 0.2


class KnowledgeCategory(models.TextChoices):
    FAQ = "faq", _("Frequently asked question")
    CANCELLATION = "cancellation", _("Cancellation policy")
    PAYMENT = "payment", _("Payment policy")
    ADDRESS = "address", _("Address and directions")
    HOURS = "hours", _("Opening hours")
    OTHER = "other", _("Other")


class KnowledgeEntry(ClinicOwned):
    """One answer the assistant may give (and cite), written by the clinic's staff."""

    category = models.CharField(
        _("category"), max_length=20, choices=KnowledgeCategory.choices, default="faq"
    )
    title = models.CharField(
        _("question or title"),
        max_length=200,
        help_text=_("How a patient would ask it, e.g. “Vocês aceitam convênio?”"),
    )
    body = models.TextField(
        _("answer"),
        help_text=_(
            "The answer, in the clinic's words. No prices of services: the assistant reads "
            "them from the catalogue."
        ),
    )
    keywords = models.CharField(
        _("other words patients use"),
        max_length=300,
        blank=True,
        help_text=_("Synonyms and abbreviations, separated by spaces or commas."),
    )
    active = models.BooleanField(_("active"), default=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        app_label = "messaging"
        verbose_name = _("knowledge base entry")
        verbose_name_plural = _("knowledge base")
        ordering = ["category", "title"]
        indexes = [models.Index(fields=["clinic", "active"], name="knowledge_clinic_active_idx")]

    def __str__(self) -> str:
        return self.title


@dataclass(frozen=True)
class ScoredEntry:
    entry: KnowledgeEntry
    score: float


# --- Normalisation (both paths) -------------------------------------------------------------
_STOP_WORDS_TEXT = """
a o as os um uma uns umas de do da dos das em no na nos nas por pra para pro com sem e
ou que qual quais quanto quando onde como se eu voce voces vc vcs meu minha seu sua me
te lhe nos ao aos ate tem ter tenho ha sim nao eh e esta estao ser sao foi vai oi ola
bom boa dia tarde noite favor obrigado obrigada gostaria queria quero saber posso pode
podem consigo
"""
STOP_WORDS = frozenset(_STOP_WORDS_TEXT.split())
_WORD = re.compile(r"[a-z0-9]+")
_SUFFIXES = (
    "amentos",
    "amento",
    "mentos",
    "mento",
    "coes",
    "cao",
    "oes",
    "ando",
    "endo",
    "indo",
    "ados",
    "adas",
    "ado",
    "ada",
    "ar",
    "er",
    "ir",
    "as",
    "es",
    "os",
    "s",
)


def normalize(text: str) -> str:
    """Lower case without accents."""
    decomposed = unicodedata.normalize("NFKD", str(text).lower())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def words(text: str) -> list[str]:
    return [w for w in _WORD.findall(normalize(text)) if w not in STOP_WORDS and len(w) > 1]


def stem(word: str) -> str:
    """A crude Portuguese stem: enough to match "cancelar", "cancelamento", "cancela"."""
    for suffix in _SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) >= 4:
            return word[: -len(suffix)]
    return word


# --- Retrieval ------------------------------------------------------------------------------
def knowledge_search(*, clinic, question: str, limit: int = DEFAULT_LIMIT) -> list[ScoredEntry]:
    """The clinic's active entries that answer ``question``, best first, at most
    ``limit``; empty when nothing matches well enough."""
    terms = words(question)
    if not terms:
        return []
    entries = KnowledgeEntry.objects.for_clinic(clinic).filter(active=True)
    if connection.vendor == "postgresql":
        return _search_postgres(entries, question, terms, limit)
    return _search_python(entries, terms, limit)


_DOCUMENT = (
    "to_tsvector('portuguese', unaccent(coalesce(title, '') || ' ' || coalesce(keywords, '') "
    "|| ' ' || coalesce(body, '')))"
)


def _search_postgres(entries, question: str, terms: list[str], limit: int) -> list[ScoredEntry]:
    # Words are [a-z0-9]+ (see ``words``): safe inside to_tsquery's syntax; the
    # configuration drops stop words and stems the rest.
    tsquery = " | ".join(dict.fromkeys(terms))
    # Only constants are formatted into the SQL; the question's words are bound parameters.
    score = RawSQL(  # noqa: S611
        f"ts_rank({_DOCUMENT}, to_tsquery('portuguese', unaccent(%s)))"
        f" + {TRIGRAM_WEIGHT} * word_similarity(unaccent(lower(%s)),"
        " unaccent(lower(coalesce(title, '') || ' ' || coalesce(keywords, ''))))",
        (tsquery, " ".join(terms)),
        output_field=models.FloatField(),
    )
    found = (
        entries.annotate(score=score)
        .filter(score__gte=MIN_SCORE_POSTGRES)
        .order_by("-score", "pk")[:limit]
    )
    return [ScoredEntry(entry=entry, score=float(entry.score)) for entry in found]


def _term_score(term: str, vocabulary: set[str], stems: set[str]) -> float:
    if term in vocabulary or stem(term) in stems:
        return 1.0
    if len(term) >= 5 and difflib.get_close_matches(term, vocabulary, n=1, cutoff=0.8):
        return 0.6  # a typo: "cancelameto", "endereco" for "endereço" is exact already
    return 0.0


def score_entry(terms: list[str], *, title: str, keywords: str, body: str) -> float:
    """How well an entry answers the question's ``terms`` (0–1): each term scores by its
    best match, in the title and keywords at full weight, in the body at half."""
    head = set(words(f"{title} {keywords}"))
    text = set(words(body))
    head_stems = {stem(w) for w in head}
    text_stems = {stem(w) for w in text}
    total = 0.0
    for term in terms:
        total += max(_term_score(term, head, head_stems), 0.5 * _term_score(term, text, text_stems))
    return total / len(terms)


def _search_python(entries, terms: list[str], limit: int) -> list[ScoredEntry]:
    scored = []
    for entry in entries.only("pk", "clinic_id", "category", "title", "body", "keywords"):
        value = score_entry(terms, title=entry.title, keywords=entry.keywords, body=entry.body)
        if value >= MIN_SCORE_PYTHON:
            scored.append(ScoredEntry(entry=entry, score=round(value, 4)))
    scored.sort(key=lambda s: (-s.score, s.entry.pk))
    return scored[:limit]


def knowledge_snippets(found: list[ScoredEntry]) -> list[KnowledgeSnippet]:
    """What ``integrations.llm.answer`` takes (it cites ``KnowledgeEntry`` ids back)."""
    return [KnowledgeSnippet(id=s.entry.pk, title=s.entry.title, text=s.entry.body) for s in found]


@dataclass(frozen=True)
class KnowledgeReply:
    """An answer to a patient's question and the entries it rests on. ``by`` is ``"llm"``
    (``provider`` and ``model`` say which) or ``"rules"`` (the best entry's own text)."""

    text: str
    cited_entry_ids: list[int]
    by: str
    provider: str = ""
    model: str = ""


def _confident(found: ScoredEntry) -> bool:
    floor = (
        RULES_MIN_SCORE_POSTGRES if connection.vendor == "postgresql" else RULES_MIN_SCORE_PYTHON
    )
    return found.score >= floor


def knowledge_reply(
    *, clinic, question: str, known_prices=(), offered_times=()
) -> KnowledgeReply | None:
    """The clinic's answer to ``question`` from its knowledge base, or ``None`` when the
    base does not answer it. Calls a model when the clinic has one (never inside a
    transaction); ``known_prices`` / ``offered_times`` are what a model's text may name
    besides what the cited entries say (``integrations.llm.answer``)."""
    found = knowledge_search(clinic=clinic, question=question)
    if not found:
        return None
    reply = answer(
        clinic,
        question,
        entries=knowledge_snippets(found),
        known_prices=known_prices,
        offered_times=offered_times,
    )
    if reply is not None:
        return KnowledgeReply(
            text=reply.text,
            cited_entry_ids=reply.cited_entry_ids,
            by="llm",
            provider=reply.provider,
            model=reply.model,
        )
    best = found[0]
    if not _confident(best):
        return None
    return KnowledgeReply(text=best.entry.body, cited_entry_ids=[best.entry.pk], by="rules")
