"""CID-10 search (``clinic.records.cid10.search``) over the full DATASUS table.

Data: the whole CID-10 2008 table (22 chapters, 275 groups, 2,045 categories, 12,188
subcategories) as migration ``records.0003_load_cid10`` loads it, in PostgreSQL with the
trigram index of ``records.0002`` (``BENCH_DATABASE_URL``, default
postgres://postgres@127.0.0.1:5432/cuidar_bench_records, created and migrated if missing).

Measured, in process (what the widget's JSON view computes, without HTTP), over 600 queries
drawn from what clinicians type (codes with and without the dot, category prefixes, words
with and without accents, two-word phrases, a lay term):

1. ``search(query)``: p50, p95 and max; target (issue 20) p95 < 30 ms.
2. The textbook way, same queries, same run: ``Cid10Code.objects.filter(description__
   icontains=word, …)`` for each word (no accent folding — it misses "cefaleia" for
   "Cefaléia" — and no ranking beyond the code order), and codes by ``code__istartswith``.
3. The floor, same run: one plain SQL statement on ``search_text`` (``LIKE`` per word,
   ``LIMIT 20``, no ranking) through the same connection.

Run: ``python bench/records_cid.py``; prints a JSON object.
"""

import json
import os
import random
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench._production import bench_environment, database_create  # noqa: E402

DATABASE_URL = os.environ.get(
    "BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/cuidar_bench_records"
)
os.environ.update(
    bench_environment(DATABASE_URL, os.environ.get("BENCH_BROKER_URL", "redis://127.0.0.1:6379/13"))
)

RUNS = 600
TARGET_P95_MS = 30
QUERIES = [
    "J45.0", "j450", "J45", "E11.9", "e119", "I10", "M54", "F32.1", "Z00", "K21.0",
    "asma", "diabetes", "cefaleia", "cefaléia", "hipertensão", "dor lombar", "depressão",
    "ansiedade", "lombalgia", "diabetes tipo 2", "infecção urinária", "gastrite", "fratura",
    "enxaqueca", "obesidade", "gravidez", "neoplasia maligna da mama", "tendinite", "otite",
    "faringite aguda", "dermatite", "insônia", "artrose", "rinite alérgica", "sinusite",
]  # fmt: skip


def _percentiles(samples: list[float]) -> dict:
    ordered = sorted(samples)
    return {
        "p50_ms": round(statistics.median(ordered), 2),
        "p95_ms": round(ordered[int(len(ordered) * 0.95) - 1], 2),
        "max_ms": round(ordered[-1], 2),
    }


def main() -> dict:
    database_create(DATABASE_URL)
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection
    from django.db.models import Q

    from clinic.records.cid10 import _CODE, _WORD, normalize, search
    from clinic.records.models import Cid10Code

    call_command("migrate", verbosity=0)
    rows = Cid10Code.objects.count()

    def textbook(query: str) -> list:
        candidate = query.upper().replace(" ", "")
        if _CODE.fullmatch(candidate):
            return list(Cid10Code.objects.filter(code__istartswith=query.strip())[:20])
        condition = Q()
        for word in query.split():
            condition &= Q(description__icontains=word)
        return list(Cid10Code.objects.filter(condition).order_by("compact")[:20])

    def floor(query: str) -> list:
        words = _WORD.findall(normalize(query)) or [""]
        sql = "SELECT id, code, description FROM records_cid10code WHERE " + " AND ".join(
            ["search_text LIKE %s"] * len(words)
        )
        with connection.cursor() as cursor:
            cursor.execute(sql + " LIMIT 20", [f"%{w}%" for w in words])
            return cursor.fetchall()

    random.seed(20)
    drawn = [random.choice(QUERIES) for _ in range(RUNS)]  # noqa: S311 (a fixed draw)
    for query in QUERIES:  # warm the connection, the plans and the caches
        search(query), textbook(query), floor(query)

    results = {}
    for name, fn in (("search", search), ("textbook", textbook), ("floor", floor)):
        samples = []
        for query in drawn:
            start = time.perf_counter()
            fn(query)
            samples.append((time.perf_counter() - start) * 1000)
        results[name] = _percentiles(samples)
    misses = [q for q in QUERIES if not textbook(q) and search(q)]
    return {
        "scenario": "records_cid",
        "rows": rows,
        "runs": RUNS,
        "target_p95_ms": TARGET_P95_MS,
        "met": results["search"]["p95_ms"] < TARGET_P95_MS,
        **results,
        "textbook_finds_nothing_for": misses,
        "load_average": os.getloadavg()[0],
    }


if __name__ == "__main__":
    print(json.dumps(main(), ensure_ascii=False, indent=2))
