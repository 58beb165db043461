"""Signatures of outbound partner webhooks: ``t=<ts>,v1=<hex HMAC-SHA256>``, verified in
constant time, stale timestamps refused, several v1 values accepted during a rotation."""

import hashlib
import hmac

from integrations import signing

SECRET = "whsec_test-secret-0123456789"
BODY = b'{"id":"e1","type":"patient.created","data":{"patient_id":7}}'
NOW = 1_760_000_000


def test_it_signs_the_timestamp_and_the_body_with_hmac_sha256():
    expected = hmac.new(SECRET.encode(), f"{NOW}.".encode() + BODY, hashlib.sha256).hexdigest()
    assert signing.sign(SECRET, BODY, NOW) == f"t={NOW},v1={expected}"


def test_it_verifies_its_own_signature():
    header = signing.sign(SECRET, BODY, NOW)
    assert signing.verify(SECRET, BODY, header, now=NOW + 10)


def test_it_rejects_another_secret_or_a_changed_body():
    header = signing.sign(SECRET, BODY, NOW)
    assert not signing.verify("whsec_other", BODY, header, now=NOW)
    assert not signing.verify(SECRET, BODY + b" ", header, now=NOW)


def test_it_rejects_a_moved_timestamp():
    # The timestamp is signed: changing it in the header breaks the signature.
    signature = signing.sign(SECRET, BODY, NOW).split(",")[1]
    assert not signing.verify(SECRET, BODY, f"t={NOW + 1},{signature}", now=NOW)


def test_it_rejects_stale_and_future_timestamps():
    header = signing.sign(SECRET, BODY, NOW)
    assert signing.verify(SECRET, BODY, header, now=NOW + 300)
    assert not signing.verify(SECRET, BODY, header, now=NOW + 301)
    assert not signing.verify(SECRET, BODY, header, now=NOW - 301)
    assert signing.verify(SECRET, BODY, header, now=NOW + 3000, tolerance=3600)


def test_it_accepts_any_of_several_v1_values_during_a_rotation():
    header = signing.sign_many(["whsec_new", SECRET], BODY, NOW)
    assert header.count("v1=") == 2
    assert signing.verify(SECRET, BODY, header, now=NOW)
    assert signing.verify("whsec_new", BODY, header, now=NOW)
    assert not signing.verify("whsec_third", BODY, header, now=NOW)


def test_it_rejects_malformed_headers():
    good = signing.sign(SECRET, BODY, NOW)
    signature = good.split(",")[1]
    for header in (
        "",
        signature,  # no timestamp
        f"t={NOW}",  # no signature
        f"t=abc,{signature}",
        f"t={NOW},t={NOW},{signature}",  # ambiguous timestamp
        f"t={NOW},v1=é{signature[3:]}",  # non-ASCII must not crash the comparison
        f"t={NOW},v0={signature[3:]}",  # unknown scheme
    ):
        assert not signing.verify(SECRET, BODY, header, now=NOW), header


def test_an_empty_secret_verifies_nothing():
    header = signing.sign("", BODY, NOW)
    assert not signing.verify("", BODY, header, now=NOW)


def test_new_secrets_are_prefixed_and_unique():
    first, second = signing.new_secret(), signing.new_secret()
    assert first.startswith("whsec_") and len(first) > 40
    assert first != second
