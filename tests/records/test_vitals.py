"""Vitals: impossible values refused with a field message, abnormal ones flagged, BMI
derived; wellness scales 0–10."""

from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.utils import translation

from clinic.records import vitals
from clinic.records.vitals import VitalsForm, WellnessForm


def test_a_heart_rate_of_700_is_refused_with_a_field_message():
    form = VitalsForm(data={"heart_rate": "700"})
    assert not form.is_valid()
    message = form.errors["heart_rate"][0]
    assert "700" in message and "bpm" in message and "300" in message


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("systolic", "400"),
        ("diastolic", "5"),
        ("respiratory_rate", "0"),
        ("temperature", "60"),
        ("spo2", "101"),
        ("weight", "0"),
        ("height", "400"),
        ("glucose", "5"),
        ("heart_rate", "abc"),
        ("heart_rate", "NaN"),
    ],
)
def test_impossible_or_unreadable_values_are_refused(key, value):
    with pytest.raises(ValidationError):
        vitals.validate(key, value)


def test_a_decimal_comma_is_read():
    assert vitals.validate("temperature", "37,85") == Decimal("37.9")


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("heart_rate", 55, "low"),
        ("heart_rate", 72, None),
        ("heart_rate", 120, "high"),
        ("systolic", 150, "high"),
        ("diastolic", 95, "high"),
        ("systolic", 85, "low"),
        ("temperature", Decimal("38.2"), "high"),
        ("temperature", Decimal("36.5"), None),
        ("spo2", 91, "low"),
        ("respiratory_rate", 26, "high"),
        ("glucose", 130, "high"),
        ("glucose", 60, "low"),
        ("weight", 120, None),  # no normal range of its own: BMI flags it
    ],
)
def test_values_outside_the_normal_adult_range_are_flagged(key, value, expected):
    assert vitals.flag(key, value) == expected


def test_bmi_is_derived_and_flagged():
    form = VitalsForm(data={"weight": "95", "height": "170"})
    assert form.is_valid(), form.errors
    assert form.cleaned_data["bmi"] == Decimal("32.9")
    bmi = next(r for r in form.readings() if r.key == "bmi")
    assert bmi.flag == "high"
    assert bmi.unit == "kg/m²"


def test_blood_pressure_goes_in_pairs():
    form = VitalsForm(data={"systolic": "120"})
    assert not form.is_valid()
    assert "diastolic" in form.errors


def test_the_diastolic_is_below_the_systolic():
    form = VitalsForm(data={"systolic": "80", "diastolic": "120"})
    assert not form.is_valid()
    assert "diastolic" in form.errors


def test_an_empty_form_is_valid_and_holds_nothing():
    form = VitalsForm(data={})
    assert form.is_valid()
    assert form.values() == {}
    assert form.readings() == []


def test_readings_come_in_display_order_with_words_for_the_flag():
    form = VitalsForm(data={"spo2": "97", "systolic": "145", "diastolic": "92", "heart_rate": "80"})
    assert form.is_valid(), form.errors
    readings = form.readings()
    assert [r.key for r in readings] == ["systolic", "diastolic", "heart_rate", "spo2"]
    assert readings[0].display == "145 mmHg"
    assert readings[0].flag_label == "acima do normal"
    assert readings[3].flag is None


def test_messages_and_numbers_are_in_portuguese():
    with translation.override("pt-br"):
        form = VitalsForm(data={"heart_rate": "700", "temperature": "37.5"})
        assert not form.is_valid()
        assert "não é possível" in form.errors["heart_rate"][0]
        assert vitals.assess({"temperature": Decimal("37.5")})[0].display == "37,5 °C"


def test_wellness_scales_take_0_to_10():
    assert list(vitals.WELLNESS_SCALES) == ["pain", "energy", "sleep_quality", "stress", "mood"]
    form = WellnessForm(data={"pain": "7", "mood": "0"})
    assert form.is_valid()
    assert form.values() == {"pain": 7, "mood": 0}
    assert not WellnessForm(data={"pain": "11"}).is_valid()
    assert not WellnessForm(data={"stress": "-1"}).is_valid()


def test_each_scale_says_what_0_and_10_mean():
    pain = WellnessForm().fields["pain"]
    assert pain.help_text == "0 = sem dor, 10 = pior dor imaginável"
    assert vitals.WELLNESS_SCALES["pain"].higher_is_better is False
    assert vitals.WELLNESS_SCALES["energy"].higher_is_better is True
