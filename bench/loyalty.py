"""Loyalty: the nightly tier evaluation over 200,000 patients (time, statements), beside a
textbook way and a floor, in the same run.

Data (``cuidar_bench_loy``, created and filled once by SQL; ``BENCH_LOYALTY_DATABASE_URL``):
one clinic, 200,000 patients each with a loyalty account and one or two points lots (50–3,000
points) earned at random over the last 24 months — 260,000 ledger rows. Before each measured
run the accounts are put back in yesterday's state (tiers as they were one day ago, written
by one SQL statement), so each run does tonight's real work: the accounts whose points left
the 12-month window since yesterday go down a tier and publish ``loyalty.tier_changed``.

Measured, each from the same state:

* ``tiers_evaluate`` (loyalty/services/tiers.py): one aggregate query, the accounts read in
  chunks, only the changed ones written (``bulk_update`` per 2,000) with their events.
* textbook: ``account_tier_evaluate`` account by account (an aggregate and a save each, the
  way a first version would loop), on 1,000 accounts, extrapolated to all.
* floor: one ``UPDATE … FROM (SELECT … GROUP BY)`` in plain SQL with the thresholds as a
  CASE, writing only the changed rows and publishing nothing.

Redis DB 72/73 by default (``BENCH_REDIS_URL`` / ``BENCH_BROKER_URL``): the events'
dispatch is sent there. Prints JSON.
"""

from __future__ import annotations

import json
import os
import sys
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from bench._production import bench_environment, database_create  # noqa: E402

DATABASE_URL = os.environ.get(
    "BENCH_LOYALTY_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/cuidar_bench_loy"
)
os.environ.setdefault("BENCH_REDIS_URL", "redis://127.0.0.1:6379/72")
BROKER_URL = os.environ.get("BENCH_BROKER_URL", "redis://127.0.0.1:6379/73")
os.environ.update(bench_environment(DATABASE_URL, BROKER_URL))
PATIENTS = int(os.environ.get("BENCH_LOYALTY_PATIENTS", "200000"))
TEXTBOOK_SAMPLE = 1000


def _setup():
    database_create(DATABASE_URL)
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


SEED_SQL = [
    # Patients (only the columns the bench needs; the rest empty, as the model's defaults).
    """
INSERT INTO clinic_patient (postal_code, street, number, complement, district, city, state,
    full_name, social_name, cpf, sex, gender_identity, phone, email, preferred_channel,
    blood_type, allergies, chronic_conditions, medications, lead_source, notes, no_show_count,
    checkin_token, search_name, created_at, updated_at, clinic_id)
SELECT '', '', '', '', '', '', '', 'Paciente ' || g, '', '', '', '',
    '+5511' || lpad(g::text, 9, '0'), '', 'whatsapp', '', '', '', '', '', '', 0,
    md5('bench' || g), 'paciente ' || g, now(), now(), %(clinic)s
  FROM generate_series(%(first)s, %(last)s) AS g
""",
    # An account each.
    """
INSERT INTO loyalty_loyaltyaccount (clinic_id, patient_id, balance, tier, earned_12m,
    referral_code, created_at)
SELECT p.clinic_id, p.id, 0, 'bronze', 0, upper(substr(md5('ref' || p.id), 1, 10)), now()
  FROM clinic_patient p
 WHERE p.clinic_id = %(clinic)s
   AND NOT EXISTS (SELECT 1 FROM loyalty_loyaltyaccount a WHERE a.patient_id = p.id)
""",
    # One lot, or two for 30 %% of them, of 50–3,000 points, earned over the last 24 months.
    """
INSERT INTO loyalty_pointsentry (clinic_id, account_id, kind, points, reason, reference_type,
    source_key, expires_at, created_at)
SELECT a.clinic_id, a.id, 'earn', 50 + floor(random() * 2951)::int, 'bench', '',
    'bench:' || n, now() + interval '365 days', now() - random() * interval '730 days'
  FROM loyalty_loyaltyaccount a
 CROSS JOIN LATERAL generate_series(0, CASE WHEN a.id %% 10 < 3 THEN 1 ELSE 0 END) AS n
 WHERE a.clinic_id = %(clinic)s
   AND NOT EXISTS (SELECT 1 FROM loyalty_pointsentry e WHERE e.account_id = a.id)
""",
    """
UPDATE loyalty_loyaltyaccount a SET balance = s.total
  FROM (SELECT account_id, SUM(points) AS total FROM loyalty_pointsentry
         WHERE clinic_id = %(clinic)s GROUP BY account_id) s
 WHERE a.id = s.account_id AND a.balance <> s.total
""",
]


def _seed():
    """The bench data, written by SQL (a Python loop took ~30 minutes on a loaded machine)."""
    from django.db import connection, transaction

    from clinic.models import Clinic, Patient
    from loyalty.models import LoyaltyAccount, LoyaltyProgram

    clinic = Clinic.objects.filter(name="Bench Loyalty").first()
    if clinic and LoyaltyAccount.objects.filter(clinic=clinic, balance__gt=0).count() == PATIENTS:
        return clinic
    started = time.time()
    if clinic is None:
        clinic = Clinic.objects.create(name="Bench Loyalty")
    LoyaltyProgram.objects.update_or_create(clinic=clinic, defaults={"is_active": True})
    have = Patient.objects.filter(clinic=clinic).count()
    with transaction.atomic(), connection.cursor() as cursor:
        params = {"clinic": clinic.pk, "first": have + 1, "last": PATIENTS}
        for sql in SEED_SQL if have < PATIENTS else SEED_SQL[1:]:
            cursor.execute(sql, params)
    with connection.cursor() as cursor:
        # Lots an earlier (Python) seeding wrote all "now": spread them like the others. The
        # ledger is append-only in the database; its trigger is set aside for bench data only.
        cursor.execute(
            "ALTER TABLE loyalty_pointsentry DISABLE TRIGGER loyalty_pointsentry_append_only"
        )
        cursor.execute(
            "UPDATE loyalty_pointsentry SET created_at = now() - random() * interval '730 days' "
            "WHERE clinic_id = %s AND created_at > now() - interval '1 day'",
            [clinic.pk],
        )
        cursor.execute(
            "ALTER TABLE loyalty_pointsentry ENABLE TRIGGER loyalty_pointsentry_append_only"
        )
        cursor.execute("ANALYZE loyalty_pointsentry")
        cursor.execute("ANALYZE loyalty_loyaltyaccount")
    print(f"seeded {PATIENTS} in {time.time() - started:.0f} s", file=sys.stderr)
    return clinic


FLOOR_SQL = """
UPDATE loyalty_loyaltyaccount AS a
   SET earned_12m = s.total,
       tier = CASE WHEN s.total >= %(platinum)s THEN 'platinum'
                   WHEN s.total >= %(gold)s THEN 'gold'
                   WHEN s.total >= %(silver)s THEN 'silver' ELSE 'bronze' END,
       tier_evaluated_at = %(now)s
  FROM (SELECT a2.id, COALESCE(SUM(e.points), 0) AS total
          FROM loyalty_loyaltyaccount a2
          LEFT JOIN loyalty_pointsentry e
            ON e.account_id = a2.id AND e.kind IN ('earn', 'reverse') AND e.created_at >= %(since)s
         WHERE a2.clinic_id = %(clinic)s
         GROUP BY a2.id) AS s
 WHERE a.id = s.id AND (a.earned_12m <> s.total OR a.tier <> CASE
       WHEN s.total >= %(platinum)s THEN 'platinum' WHEN s.total >= %(gold)s THEN 'gold'
       WHEN s.total >= %(silver)s THEN 'silver' ELSE 'bronze' END)
"""


def _floor(clinic, program, now):
    from django.db import connection, transaction

    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            FLOOR_SQL,
            {
                "platinum": program.platinum_points,
                "gold": program.gold_points,
                "silver": program.silver_points,
                "now": now,
                "since": now - timedelta(days=365),
                "clinic": clinic.pk,
            },
        )
        return cursor.rowcount


def _yesterday(clinic, program, now):
    """Tiers as the last night's run left them."""
    _floor(clinic, program, now - timedelta(days=1))


class Statements:
    def __init__(self):
        from django.db import connection

        self.connection = connection
        self.count = 0

    def __enter__(self):
        self.connection.execute_wrappers.append(self)
        return self

    def __exit__(self, *exc):
        self.connection.execute_wrappers.remove(self)

    def __call__(self, execute, sql, params, many, context):
        self.count += 1
        return execute(sql, params, many, context)


def _cpu():
    times = os.times()
    return times.user + times.system


def main():
    _setup()
    from django.db import transaction
    from django.utils import timezone

    from integrations.models import Event
    from loyalty.models import LoyaltyAccount
    from loyalty.services import account_tier_evaluate, program_for, tiers_evaluate

    clinic = _seed()
    program = program_for(clinic)
    now = timezone.now()
    result = {"patients": PATIENTS, "ledger_rows": clinic.pointsentrys.count()}

    _yesterday(clinic, program, now)
    events_before = Event.objects.filter(event_type="loyalty.tier_changed").count()
    with Statements() as statements:
        cpu, wall = _cpu(), time.perf_counter()
        moved = tiers_evaluate(clinic=clinic, now=now)
        wall, cpu = time.perf_counter() - wall, _cpu() - cpu
    result["tiers_evaluate"] = {
        "seconds": round(wall, 2),
        "python_cpu_seconds": round(cpu, 2),
        "statements": statements.count,
        "tier_changes": moved,
        "events": Event.objects.filter(event_type="loyalty.tier_changed").count() - events_before,
    }

    _yesterday(clinic, program, now)
    ids = list(
        LoyaltyAccount.objects.filter(clinic=clinic)
        .order_by("?")
        .values_list("pk", flat=True)[:TEXTBOOK_SAMPLE]
    )
    with Statements() as statements:
        wall = time.perf_counter()
        for pk in ids:
            with transaction.atomic():
                account = LoyaltyAccount.objects.select_for_update().get(pk=pk)
                account_tier_evaluate(account=account, program=program, now=now)
        wall = time.perf_counter() - wall
    result["textbook_per_account"] = {
        "sample": len(ids),
        "seconds": round(wall, 2),
        "statements": statements.count,
        "extrapolated_seconds": round(wall * PATIENTS / len(ids), 1),
        "extrapolated_statements": statements.count * PATIENTS // len(ids),
    }

    _yesterday(clinic, program, now)
    with Statements() as statements:
        wall = time.perf_counter()
        changed = _floor(clinic, program, now)
        wall = time.perf_counter() - wall
    result["floor_one_sql_update"] = {
        "seconds": round(wall, 2),
        "statements": statements.count,
        "rows_changed": changed,
        "note": "publishes no event",
    }
    result["share_of_floor"] = round(
        result["floor_one_sql_update"]["seconds"] / result["tiers_evaluate"]["seconds"], 3
    )
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
