"""Retention: a deletion request keeps the clinical record and records its legal basis; the
report lists records past 20 years since their last entry."""

from datetime import date

import pytest
from django.core.management import call_command

from clinic.privacy import patient_anonymise, privacy_request_create
from clinic.records import retention
from tests.clinic.factories import PatientFactory


@pytest.fixture
def entries():
    """A stand-in for the encounters' entry source: ``entries[patient_id] = date``."""
    dates: dict[int, date] = {}

    def source(*, clinic, patient_ids=None):
        from clinic.models import Patient

        mine = set(Patient.objects.for_clinic(clinic).values_list("pk", flat=True))
        return [
            (pid, day)
            for pid, day in dates.items()
            if pid in mine and (patient_ids is None or pid in patient_ids)
        ]

    retention.entry_source(source)
    yield dates
    retention._SOURCES.remove(source)


def test_a_deletion_request_keeps_the_record_and_says_why(entries, patient_a, manager_a):
    entries[patient_a.pk] = date(2025, 3, 10)
    request = privacy_request_create(patient=patient_a, kind="deletion")
    closed = patient_anonymise(patient=patient_a, by=manager_a)
    assert closed.pk == request.pk
    assert "Lei 13.787/2018 (art. 6)" in closed.retention_basis
    assert "1.821/2007 (art. 7)" in closed.retention_basis
    assert "10/03/2025" in closed.retention_basis and "10/03/2045" in closed.retention_basis
    # The patient reads it on their privacy page (the resolution).
    assert closed.retention_basis in closed.resolution
    patient_a.refresh_from_db()
    assert patient_a.full_name == "Maria José Araújo"  # the record's identification is kept


def test_without_clinical_entries_no_basis_is_recorded(entries, patient_a, manager_a):
    privacy_request_create(patient=patient_a, kind="deletion")
    closed = patient_anonymise(patient=patient_a, by=manager_a)
    assert closed.retention_basis == ""


def test_another_clinics_entries_do_not_count(entries, patient_a, patient_b, manager_a):
    entries[patient_b.pk] = date(2025, 1, 1)
    assert retention.last_entry_dates(patient_a.clinic) == {}


def test_the_latest_entry_of_every_source_wins(entries, patient_a):
    entries[patient_a.pk] = date(2020, 1, 1)

    def attachments(*, clinic, patient_ids=None):
        return [(patient_a.pk, date(2022, 6, 1))]

    retention.entry_source(attachments)
    try:
        assert retention.last_entry_dates(patient_a.clinic) == {patient_a.pk: date(2022, 6, 1)}
    finally:
        retention._SOURCES.remove(attachments)


def test_twenty_years_later_even_from_a_29th_of_february():
    assert retention.retention_until(date(2004, 2, 29)) == date(2024, 2, 29)
    assert retention.retention_until(date(2080, 2, 29)) == date(2100, 2, 28)  # 2100: no 29th
    assert retention.retention_until(date(2006, 5, 2)) == date(2026, 5, 2)


def test_the_report_lists_records_past_twenty_years_only(entries, clinic_a):
    old = PatientFactory(clinic=clinic_a, full_name="Antiga Paciente")
    recent = PatientFactory(clinic=clinic_a, full_name="Recente Paciente")
    exactly = PatientFactory(clinic=clinic_a, full_name="Exata Paciente")
    entries[old.pk] = date(2004, 1, 15)
    entries[recent.pk] = date(2007, 1, 15)
    entries[exactly.pk] = date(2006, 12, 6)
    past = retention.records_past_retention(clinic_a, today=date(2026, 12, 6))
    assert [r.patient_id for r in past] == [old.pk, exactly.pk]
    assert past[0].kept_until == date(2024, 1, 15)


def test_the_report_command_names_them_and_deletes_nothing(entries, clinic_a, capsys):
    old = PatientFactory(clinic=clinic_a, full_name="Antiga Paciente")
    entries[old.pk] = date(2001, 7, 1)
    call_command("records_retention_report", clinic=clinic_a.pk)
    out = capsys.readouterr().out
    assert "Antiga Paciente" in out and "2001-07-01" in out and "2021-07-01" in out
    assert "Nothing was deleted" in out
    old.refresh_from_db()
