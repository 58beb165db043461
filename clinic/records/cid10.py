"""CID-10 (DATASUS, version 2008): loading the table, searching it, and the sex-restriction
warning.

Interface (used by the encounter's diagnosis widget and services, issue 20):

- ``load_cid10(*, apps=None) -> dict[str, int]``: fills chapters, groups, categories and
  subcategories from ``clinic/records/data/cid10/`` (see its SOURCE.md). Idempotent: rows are
  upserted by their natural keys, so running it again changes nothing and never deletes a
  code a diagnosis may point to. Run by migration ``records.0003_load_cid10`` and by
  ``manage.py load_cid10``.
- ``search(query, limit=20) -> list[Cid10Code]``: by code ("J45.0", "j450", "J45") or by
  words ("asma", "cefaleia" finds "Cefaléia"), ranked: exact code, codes starting with it,
  then descriptions (those starting with the words first).
- ``sex_conflict(code, patient_sex) -> str | None``: the warning to show when a code
  restricted to one sex is given to a patient registered with the other.

Sex restrictions: subcategories carry DATASUS' RESTRSEXO. A category takes its own row's
RESTRSEXO when DATASUS repeats it in the subcategory file (the 263 categories without
subdivisions, e.g. N40), and otherwise the restriction its subcategories all share (every
subcategory of C53 is F, so C53 is F); a category whose subcategories differ has none.
"""

from __future__ import annotations

import csv
import re
from collections import defaultdict
from pathlib import Path

from django.apps import apps as django_apps
from django.db import connection, transaction
from django.db.models import Case, IntegerField, Value, When
from django.db.models.functions import Length
from django.utils.translation import gettext as _

from clinic.choices import Sex
from clinic.models import search_normalize

from .models import Cid10Code

DATA_DIR = Path(__file__).resolve().parent / "data" / "cid10"

#: Words professionals type that the 2008 descriptions do not contain, added to the search
#: text of a category and its subcategories (E11 reads "não-insulino-dependente": people
#: search "diabetes tipo 2").
ALIASES = {
    "E10": "diabetes tipo 1 dm1",
    "E11": "diabetes tipo 2 dm2",
    "I10": "has hipertensao arterial sistemica",
    "M54.5": "lombalgia",
    "F32": "depressao",
    "F41.1": "tag ansiedade generalizada",
    "K21": "drge refluxo",
}

_CODE = re.compile(r"[A-Z]\d{0,2}(\.?\d)?")
_WORD = re.compile(r"[\w.]+")


def normalize(text: str) -> str:
    """Lower-case without accents: "Cefaléia" and "cefaleia" both become "cefaleia"."""
    return search_normalize(text)


def dotted(compact: str) -> str:
    """``J450`` → ``J45.0``; a category stays as it is."""
    return f"{compact[:3]}.{compact[3:]}" if len(compact) > 3 else compact


def _rows(name: str) -> list[dict[str, str]]:
    with open(DATA_DIR / name, encoding="utf-8", newline="") as handle:
        return [
            {k: (v or "").strip() for k, v in row.items() if k}
            for row in csv.DictReader(handle, delimiter=";")
        ]


def _search_text(code: str, description: str) -> str:
    # Description first (ranking looks at how it starts), then the code with and without
    # its dot, then any aliases of the code or of its category.
    aliases = " ".join(filter(None, dict.fromkeys((ALIASES.get(code[:3]), ALIASES.get(code)))))
    return normalize(f"{description} | {code} {code.replace('.', '')} {aliases}")[:400]


def _in_range(code: str, first: str, last: str) -> bool:
    return first <= code[:3] <= last


@transaction.atomic
def load_cid10(*, apps=None) -> dict[str, int]:
    """Load (or refresh) the CID-10 tables; returns the number of rows of each kind.

    ``apps`` is a migration's app registry when a data migration runs it."""
    registry = apps or django_apps
    chapter_model = registry.get_model("records", "Cid10Chapter")
    group_model = registry.get_model("records", "Cid10Group")
    code_model = registry.get_model("records", "Cid10Code")

    chapters = [
        chapter_model(
            number=int(row["NUMCAP"]),
            first_code=row["CATINIC"],
            last_code=row["CATFIM"],
            description=row["DESCRICAO"],
        )
        for row in _rows("CID-10-CAPITULOS.csv")
    ]
    chapter_model.objects.bulk_create(
        chapters,
        update_conflicts=True,
        unique_fields=["number"],
        update_fields=["first_code", "last_code", "description"],
    )

    groups = []
    for row in _rows("CID-10-GRUPOS.csv"):
        chapter = next(c for c in chapters if _in_range(row["CATINIC"], c.first_code, c.last_code))
        groups.append(
            group_model(
                chapter_id=chapter.number,
                first_code=row["CATINIC"],
                last_code=row["CATFIM"],
                description=row["DESCRICAO"],
            )
        )
    group_model.objects.bulk_create(
        groups,
        update_conflicts=True,
        unique_fields=["first_code", "last_code"],
        update_fields=["chapter", "description"],
    )
    group_ids = list(group_model.objects.values_list("first_code", "last_code", "id"))

    def group_of(category: str) -> int | None:
        # Groups nest in a few chapters (none in 2008's table, but be safe): the narrowest.
        found = [(last, gid) for first, last, gid in group_ids if first <= category <= last]
        return min(found)[1] if found else None

    subcategory_rows = _rows("CID-10-SUBCATEGORIAS.csv")
    own_restriction = {
        r["SUBCAT"]: r["RESTRSEXO"] for r in subcategory_rows if len(r["SUBCAT"]) == 3
    }
    child_restrictions = defaultdict(set)
    for row in subcategory_rows:
        if len(row["SUBCAT"]) == 4:
            child_restrictions[row["SUBCAT"][:3]].add(row["RESTRSEXO"])

    def category_restriction(compact: str) -> str:
        if compact in own_restriction:
            return own_restriction[compact]
        shared = child_restrictions.get(compact, set())
        return next(iter(shared)) if len(shared) == 1 else ""

    update_fields = [
        "code",
        "level",
        "category",
        "group",
        "description",
        "short_description",
        "sex_restriction",
        "search_text",
    ]
    categories = []
    for row in _rows("CID-10-CATEGORIAS.csv"):
        compact = row["CAT"]
        categories.append(
            code_model(
                code=compact,
                compact=compact,
                level="category",
                group_id=group_of(compact),
                description=row["DESCRICAO"],
                short_description=row["DESCRABREV"][:100],
                sex_restriction=category_restriction(compact),
                search_text=_search_text(compact, row["DESCRICAO"]),
            )
        )
    code_model.objects.bulk_create(
        categories,
        update_conflicts=True,
        unique_fields=["compact"],
        update_fields=update_fields,
        batch_size=2000,
    )
    category_ids = dict(code_model.objects.filter(level="category").values_list("compact", "id"))
    category_groups = {c.compact: c.group_id for c in categories}

    subcategories = []
    for row in subcategory_rows:
        compact = row["SUBCAT"]
        if len(compact) != 4:
            continue
        code = dotted(compact)
        subcategories.append(
            code_model(
                code=code,
                compact=compact,
                level="subcategory",
                category_id=category_ids[compact[:3]],
                group_id=category_groups.get(compact[:3]),
                description=row["DESCRICAO"],
                short_description=row["DESCRABREV"][:100],
                sex_restriction=row["RESTRSEXO"],
                search_text=_search_text(code, row["DESCRICAO"]),
            )
        )
    code_model.objects.bulk_create(
        subcategories,
        update_conflicts=True,
        unique_fields=["compact"],
        update_fields=update_fields,
        batch_size=2000,
    )
    return {
        "chapters": len(chapters),
        "groups": len(groups),
        "categories": len(categories),
        "subcategories": len(subcategories),
    }


def search(query: str, limit: int = 20) -> list:
    """CID-10 codes matching ``query``, best first (at most ``limit``).

    A query shaped like a code ("J45", "j45.0", "J450") matches codes: the exact code first,
    then the codes starting with it (category before its subcategories). Anything else
    matches words: every word must occur in the code's description (or its aliases),
    accents and case ignored; descriptions starting with the query come first, then those
    containing it as a phrase, then the rest (on PostgreSQL by trigram similarity, served
    by the trigram index on ``search_text``), shorter codes (categories) first.
    """
    text = (query or "").strip()
    if not text:
        return []
    candidate = text.upper().replace(" ", "")
    if _CODE.fullmatch(candidate):
        compact = candidate.replace(".", "")
        rows = (
            Cid10Code.objects.filter(compact__startswith=compact)
            .annotate(
                rank=Case(When(compact=compact, then=Value(0)), default=Value(1)),
                size=Length("compact"),
            )
            .order_by("rank", "size", "compact")
        )
        return list(rows[:limit])

    words = _WORD.findall(normalize(text))
    if not words:
        return []
    phrase = " ".join(words)
    rows = Cid10Code.objects.all()
    for word in words:
        rows = rows.filter(search_text__contains=word)
    rows = rows.annotate(
        rank=Case(
            When(search_text__startswith=phrase, then=Value(0)),
            When(search_text__contains=phrase, then=Value(1)),
            default=Value(2),
            output_field=IntegerField(),
        ),
        size=Length("compact"),
    )
    order = ["rank"]
    if connection.vendor == "postgresql":
        from django.contrib.postgres.search import TrigramWordSimilarity

        rows = rows.annotate(similarity=TrigramWordSimilarity(phrase, "search_text"))
        order.append("-similarity")
    return list(rows.order_by(*order, "size", "compact")[:limit])


def sex_conflict(code, patient_sex: str) -> str | None:
    """The warning when ``code`` (a ``Cid10Code`` or its text, with or without the dot) is
    restricted to one sex and the patient is registered with the other; ``None`` otherwise
    (no restriction, sex not informed or intersex: nothing to contradict)."""
    if isinstance(code, str):
        compact = code.strip().upper().replace(".", "")
        code = Cid10Code.objects.filter(compact=compact).first()
        if code is None:
            return None
    restriction = code.sex_restriction
    if restriction == "F" and patient_sex == Sex.MALE:
        return _(
            "CID-10 %(code)s applies to female patients only, and this patient is registered "
            "as male. Check the code or the patient's registration."
        ) % {"code": code.code}
    if restriction == "M" and patient_sex == Sex.FEMALE:
        return _(
            "CID-10 %(code)s applies to male patients only, and this patient is registered "
            "as female. Check the code or the patient's registration."
        ) % {"code": code.code}
    return None
