"""The sign-in's first step must not tell, by how long it takes, whether a CPF is registered.

Before issue 16 only a registered CPF chose a channel and queued the code inside the request
(10–13 ms against 6–7 ms, no overlap). Now both paths do the same work in the request (one
lookup, one challenge row, one queued task) and the code is chosen and sent by the worker.

The timing test interleaves requests for a registered and an unknown CPF in random order, so
that a loaded machine slows both alike, and compares the two samples with the Mann-Whitney
statistic: the probability that a request for the registered CPF is the slower of a pair.
It is 1.0 when the paths differ as they did (every known request slower), about 0.5 when
they do not."""

import random
import re
from time import perf_counter

import pytest
from django.core.cache import cache
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from clinic import services
from clinic.choices import ConsentPurpose, ConsentStatus, ContactChannel

pytestmark = pytest.mark.django_db

KNOWN = "529.982.247-25"
UNKNOWN = "111.444.777-35"
#: Pairs of requests measured (after a warm-up).
PAIRS = 150


@pytest.fixture
def maria(patient_a):
    services.consent_record(
        patient=patient_a,
        channel=ContactChannel.WHATSAPP,
        purpose=ConsentPurpose.UTILITY,
        status=ConsentStatus.GRANTED,
    )
    return patient_a


def _post(client: Client, identifier: str) -> float:
    cache.clear()  # throttles would soon answer 429 (and alike for both, so not measured)
    start = perf_counter()
    response = client.post("/portal/entrar/", {"identifier": identifier})
    elapsed = perf_counter() - start
    assert response.status_code == 302
    return elapsed


def probability_slower(a: list[float], b: list[float]) -> float:
    """Mann-Whitney U of ``a`` over ``b``, divided by len(a)·len(b): the probability that a
    value of ``a`` is above one of ``b`` (ties count half)."""
    ranked = sorted([(v, 0) for v in a] + [(v, 1) for v in b])
    ranks = [0.0] * len(ranked)
    i = 0
    while i < len(ranked):  # average ranks over ties
        j = i
        while j + 1 < len(ranked) and ranked[j + 1][0] == ranked[i][0]:
            j += 1
        for k in range(i, j + 1):
            ranks[k] = (i + j) / 2 + 1
        i = j + 1
    rank_sum_a = sum(r for r, (_v, group) in zip(ranks, ranked, strict=True) if group == 0)
    u = rank_sum_a - len(a) * (len(a) + 1) / 2
    return u / (len(a) * len(b))


def test_the_statistic_tells_a_real_difference_from_none():
    rng = random.Random(1)
    same = [rng.gauss(10, 2) for _ in range(300)]
    assert 0.4 < probability_slower(same[:150], same[150:]) < 0.6
    assert probability_slower([x + 4 for x in same[:150]], same[150:]) > 0.85


def test_a_registered_cpf_and_an_unknown_one_answer_in_the_same_time(maria):
    client = Client(REMOTE_ADDR="10.0.0.16")
    for _ in range(10):  # warm-up: templates, query plans, imports
        _post(client, KNOWN)
        _post(client, UNKNOWN)
    rng = random.Random(16)
    known, unknown = [], []
    for _ in range(PAIRS):
        order = [KNOWN, UNKNOWN]
        rng.shuffle(order)
        for identifier in order:
            (known if identifier == KNOWN else unknown).append(_post(client, identifier))
    p = probability_slower(known, unknown)
    median_known = sorted(known)[PAIRS // 2] * 1000
    median_unknown = sorted(unknown)[PAIRS // 2] * 1000
    detail = (
        f"P(known slower)={p:.2f}, median known {median_known:.2f} ms, "
        f"unknown {median_unknown:.2f} ms"
    )
    print(detail)
    # Under no difference p is 0.5 ± 0.033 (one standard deviation for 150 + 150); the
    # paths differed as p = 1.0. The band leaves room for a loaded machine's noise.
    assert 0.3 < p < 0.7, detail


def test_a_registered_cpf_and_an_unknown_one_run_the_same_queries(maria):
    def queries(identifier: str) -> list[str]:
        cache.clear()
        with CaptureQueriesContext(connection) as captured:
            _post(Client(), identifier)
        # The statements, without their values and savepoint names.
        return [
            re.sub(r'"s\d+_x\d+"', "", q["sql"].split(" WHERE ")[0].split(" VALUES ")[0])
            for q in captured
        ]

    _post(Client(), KNOWN)  # warm-up (sessions, content types)
    assert queries(KNOWN) == queries(UNKNOWN)
