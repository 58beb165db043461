"""Writing, signing, correcting and inactivating encounters; the hash chain."""

from itertools import pairwise

import pytest
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.utils import translation

from clinic.records import services
from clinic.records.chain import chain_verify
from clinic.records.exceptions import EncounterLocked, NotTheAuthor, RecordError, SigningRefused
from clinic.records.models import Encounter, Entry, EntryKind
from integrations.models import Event
from tests.records.core.conftest import sign_complete, write_complete

K = EntryKind
pytestmark = pytest.mark.django_db


def open_for(professional, patient):
    return services.open_encounter(
        clinic=patient.clinic, patient=patient, professional=professional, by=professional.user
    )


def test_signing_is_refused_with_the_list_of_what_cfm_1638_requires(doctor_a, record_patient):
    encounter = open_for(doctor_a, record_patient)
    services.entry_save_draft(
        encounter=encounter, kind=K.CHIEF_COMPLAINT, content={"text": "Tosse"}, by=doctor_a.user
    )
    with pytest.raises(SigningRefused) as refused, translation.override("en"):
        services.encounter_finalize(encounter=encounter, by=doctor_a.user)
    assert refused.value.missing == [
        "physical examination",
        "diagnostic hypothesis or diagnosis (CID-10)",
        "treatment / plan",
    ]
    encounter.refresh_from_db()
    assert encounter.status == "draft"
    assert not Entry.objects.filter(status="finalized").exists()


def test_signing_is_refused_while_the_registration_is_incomplete(doctor_a, clinic_a):
    from tests.clinic.factories import PatientFactory

    bare = PatientFactory(clinic=clinic_a)
    encounter = open_for(doctor_a, bare)
    write_complete(encounter, doctor_a.user)
    with pytest.raises(SigningRefused) as refused:
        services.encounter_finalize(encounter=encounter, by=doctor_a.user)
    assert any("CEP" in item for item in refused.value.missing)


def test_a_signed_encounter_is_a_chain_of_links_and_publishes_its_event(doctor_a, record_patient):
    encounter = sign_complete(doctor_a, record_patient)
    entries = list(Entry.objects.filter(encounter=encounter).order_by("chain_seq"))
    assert [e.chain_seq for e in entries] == [1, 2, 3, 4, 5]
    assert entries[0].prev_hash == ""
    assert all(b.prev_hash == a.entry_hash for a, b in pairwise(entries))
    assert all(e.council_display == "CRM 123456/SP" for e in entries)
    assert Event.objects.filter(event_type="encounter.finalized").count() == 1
    assert chain_verify() == []


def test_a_signed_encounter_refuses_any_new_entry_vitals_included(doctor_a, record_patient):
    encounter = sign_complete(doctor_a, record_patient)
    with pytest.raises(EncounterLocked):
        services.entry_save_draft(
            encounter=encounter, kind=K.VITALS, content={"heart_rate": 80}, by=doctor_a.user
        )
    with pytest.raises(EncounterLocked):
        services.encounter_finalize(encounter=encounter, by=doctor_a.user)


def test_only_the_encounters_professional_writes_in_it(doctor_a, psychologist_a, record_patient):
    encounter = open_for(doctor_a, record_patient)
    with pytest.raises(NotTheAuthor):
        services.entry_save_draft(
            encounter=encounter, kind=K.PLAN, content={"text": "x"}, by=psychologist_a.user
        )


def test_a_correction_is_a_new_version_with_a_justification_and_the_old_stays(
    doctor_a, record_patient
):
    encounter = sign_complete(doctor_a, record_patient)
    plan = Entry.objects.get(encounter=encounter, kind=K.PLAN)
    with pytest.raises(RecordError):
        services.entry_correct(
            entry=plan, content={"text": "y"}, justification=" ", by=doctor_a.user
        )
    correction = services.entry_correct(
        entry=plan,
        content={"text": "Hidratação, retorno em 10 dias"},
        justification="Prazo de retorno digitado errado",
        by=doctor_a.user,
    )
    assert correction.version == 2 and correction.supersedes == plan
    assert (
        correction.chain_seq == 6
        and correction.prev_hash
        == Entry.objects.get(chain_seq=5, patient=record_patient).entry_hash
    )
    plan.refresh_from_db()
    assert plan.content == {"text": "Hidratação, retorno em 7 dias"}  # still there
    with pytest.raises(RecordError):  # the old version is not corrected twice
        services.entry_correct(
            entry=plan, content={"text": "z"}, justification="x", by=doctor_a.user
        )
    assert chain_verify() == []


def test_only_the_author_corrects_or_inactivates(doctor_a, psychologist_a, record_patient):
    encounter = sign_complete(doctor_a, record_patient)
    plan = Entry.objects.get(encounter=encounter, kind=K.PLAN)
    with pytest.raises(NotTheAuthor):
        services.entry_correct(
            entry=plan, content={"text": "x"}, justification="y", by=psychologist_a.user
        )
    with pytest.raises(NotTheAuthor):
        services.entry_inactivate(entry=plan, justification="y", by=psychologist_a.user)


def test_inactivation_needs_a_justification_and_deletes_nothing(doctor_a, record_patient):
    encounter = sign_complete(doctor_a, record_patient)
    plan = Entry.objects.get(encounter=encounter, kind=K.PLAN)
    with pytest.raises(RecordError):
        services.entry_inactivate(entry=plan, justification="", by=doctor_a.user)
    services.entry_inactivate(
        entry=plan, justification="Registrado no paciente errado", by=doctor_a.user
    )
    assert Entry.objects.filter(pk=plan.pk).exists()
    assert plan.inactivation.justification == "Registrado no paciente errado"


def test_python_refuses_to_change_or_delete_a_signed_entry(doctor_a, record_patient):
    encounter = sign_complete(doctor_a, record_patient)
    plan = Entry.objects.get(encounter=encounter, kind=K.PLAN)
    plan.content = {"text": "outro"}
    with pytest.raises(ValidationError):
        plan.save()
    with pytest.raises(ValidationError):
        plan.delete()


def _tamper(entry_id):
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # What a database superuser can do: run with the triggers off.
            cursor.execute("SET session_replication_role = replica")
        cursor.execute(
            "UPDATE records_entry SET content = %s WHERE id = %s",
            ['{"text": "Hidratação, retorno em 30 dias"}', entry_id],
        )
        if connection.vendor == "postgresql":
            cursor.execute("SET session_replication_role = origin")


def test_records_verify_finds_a_row_changed_by_raw_sql(doctor_a, record_patient, capsys):
    encounter = sign_complete(doctor_a, record_patient)
    sign_complete(doctor_a, record_patient)  # a second encounter: links 6–10
    call_command("records_verify")
    plan = Entry.objects.get(encounter=encounter, kind=K.PLAN)
    _tamper(plan.pk)
    with pytest.raises(CommandError):
        call_command("records_verify")
    out = capsys.readouterr().out
    assert f"entry={plan.pk} position={plan.chain_seq}: content changed after signing" in out
    [broken] = chain_verify()
    assert broken.entry_id == plan.pk  # the first broken link, not the ones after it


@pytest.mark.postgres
def test_postgresql_refuses_update_and_delete_of_signed_rows(doctor_a, record_patient):
    from django.db import InternalError, ProgrammingError, transaction

    encounter = sign_complete(doctor_a, record_patient)
    plan = Entry.objects.get(encounter=encounter, kind=K.PLAN)
    statements = [
        ("UPDATE records_entry SET content = '{}' WHERE id = %s", plan.pk),
        ("DELETE FROM records_entry WHERE id = %s", plan.pk),
        ("UPDATE records_encounter SET service_name = 'x' WHERE id = %s", encounter.pk),
        ("DELETE FROM records_encounter WHERE id = %s", encounter.pk),
        (
            "INSERT INTO records_entry (clinic_id, encounter_id, patient_id, kind, content, "
            "status, confidential, version, justification, author_id, author_name, council, "
            "council_number, council_state, created_at, updated_at, prev_hash, entry_hash) "
            "SELECT clinic_id, encounter_id, patient_id, 'vitals', '{}', 'draft', false, 1, "
            "'', author_id, '', '', '', '', now(), now(), '', '' FROM records_entry "
            "WHERE id = %s",
            plan.pk,
        ),
    ]
    for sql, pk in statements:
        with (
            pytest.raises((InternalError, ProgrammingError)),
            transaction.atomic(),
            connection.cursor() as cursor,
        ):
            cursor.execute(sql, [pk])
    plan.refresh_from_db()
    assert plan.content == {"text": "Hidratação, retorno em 7 dias"}
    assert Encounter.objects.filter(pk=encounter.pk).exists()
