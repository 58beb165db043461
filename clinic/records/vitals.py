"""Vital signs and wellness scales: units, what is possible, what is normal (pure: no models).

Interface (the encounter's vitals and scales, issue 20):

- ``VITALS``: ``{key: Vital}`` for ``systolic``, ``diastolic``, ``heart_rate``,
  ``respiratory_rate``, ``temperature``, ``spo2``, ``weight``, ``height``, ``glucose`` and the
  derived ``bmi``. Each has a label, a unit, the *possible* range (a value outside it is a
  typing error and is refused) and, when one applies to adults at rest, the *normal* range
  (a value outside it is accepted and flagged ``low`` or ``high``).
- ``validate(key, value) -> Decimal`` raises ``ValidationError`` with a field message;
  ``flag(key, value) -> "low" | "high" | None``; ``bmi(weight_kg, height_cm)``;
  ``assess(values) -> list[Reading]`` (every value given, in display order, with its flag and
  BMI derived when weight and height are there).
- ``VitalsForm``: the form of one set of vitals (all optional; blood pressure in pairs).
- ``WELLNESS_SCALES``: ``{key: Scale}`` for ``pain``, ``energy``, ``sleep_quality``,
  ``stress`` and ``mood`` (0–10, the wellness scores of seed 004's integrative record), with
  what 0 and 10 mean; ``WellnessForm``.

The ranges are for adults; children's normal ranges differ by age and are not flagged here
(a later step may take the patient's age).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from django import forms
from django.core.exceptions import ValidationError
from django.utils.formats import number_format
from django.utils.text import capfirst
from django.utils.translation import gettext_lazy as _

LOW = "low"
HIGH = "high"


@dataclass(frozen=True)
class Vital:
    """One vital sign: ``possible`` bounds what a body can show (outside: refused);
    ``normal`` is the adult reference range (outside: flagged), ``None`` when none applies."""

    key: str
    label: str
    unit: str
    possible: tuple[Decimal, Decimal]
    normal: tuple[Decimal, Decimal] | None
    decimals: int = 0


def _d(value) -> Decimal:
    return Decimal(str(value))


VITALS: dict[str, Vital] = {
    # Blood pressure: normal below 130/85 mmHg, hypertension from 140/90 (Diretrizes
    # Brasileiras de Hipertensão Arterial 2020, SBC, Arq Bras Cardiol 2021;116(3):516-658);
    # hypotension below 90/60 (the usual clinical threshold). Possible: 40–300 / 20–200.
    "systolic": Vital(
        "systolic", _("systolic blood pressure"), "mmHg", (_d(40), _d(300)), (_d(90), _d(129))
    ),
    "diastolic": Vital(
        "diastolic", _("diastolic blood pressure"), "mmHg", (_d(20), _d(200)), (_d(60), _d(84))
    ),
    # Adult resting heart rate 60–100 bpm (American Heart Association); 20–300 possible.
    "heart_rate": Vital("heart_rate", _("heart rate"), "bpm", (_d(20), _d(300)), (_d(60), _d(100))),
    # Adult respiratory rate 12–20 breaths/min (irpm) at rest (Porto, Semiologia Médica).
    "respiratory_rate": Vital(
        "respiratory_rate", _("respiratory rate"), "irpm", (_d(4), _d(80)), (_d(12), _d(20))
    ),
    # Axillary temperature: fever from 37.8 °C (Ministério da Saúde, e.g. the dengue and
    # influenza case definitions); below 35 °C is hypothermia. 36.0–37.7 normal.
    "temperature": Vital(
        "temperature", _("temperature"), "°C", (_d(25), _d(45)), (_d("36.0"), _d("37.7")), 1
    ),
    # SpO2 at rest on room air: 95 % or more is normal (WHO Pulse Oximetry Training Manual,
    # 2011); 94 % or less asks for attention. Below 50 % the oximeter is not reliable.
    "spo2": Vital("spo2", _("oxygen saturation (SpO2)"), "%", (_d(50), _d(100)), (_d(95), _d(100))),
    # Weight and height have no normal range of their own: BMI carries it.
    "weight": Vital("weight", _("weight"), "kg", (_d("0.3"), _d(500)), None, 1),
    "height": Vital("height", _("height"), "cm", (_d(30), _d(260)), None, 0),
    # BMI 18.5–24.9 kg/m² is normal weight (WHO, Obesity: preventing and managing the
    # global epidemic, TRS 894, 2000); derived, never typed.
    "bmi": Vital(
        "bmi", _("body mass index (BMI)"), "kg/m²", (_d(5), _d(150)), (_d("18.5"), _d("24.9")), 1
    ),
    # Fasting capillary or plasma glucose 70–99 mg/dL (Diretriz da Sociedade Brasileira de
    # Diabetes 2023; ADA Standards of Care); 10–1,500 possible (meters read ~20–600).
    "glucose": Vital("glucose", _("blood glucose"), "mg/dL", (_d(10), _d(1500)), (_d(70), _d(99))),
}

#: The order vitals are shown and charted in.
VITAL_ORDER = (
    "systolic",
    "diastolic",
    "heart_rate",
    "respiratory_rate",
    "temperature",
    "spo2",
    "weight",
    "height",
    "bmi",
    "glucose",
)
#: What a professional types (BMI is derived).
TYPED_VITALS = tuple(k for k in VITAL_ORDER if k != "bmi")


def validate(key: str, value) -> Decimal:
    """``value`` as a Decimal rounded to the vital's decimals; ``ValidationError`` (with the
    field's label, unit and possible range) when it is not a number or not possible."""
    vital = VITALS[key]
    try:
        number = Decimal(str(value).replace(",", "."))
    except (InvalidOperation, ValueError):
        raise ValidationError(_("Enter a number."), code="invalid") from None
    if not number.is_finite():
        raise ValidationError(_("Enter a number."), code="invalid")
    low, high = vital.possible
    if not low <= number <= high:
        raise ValidationError(
            _("%(label)s of %(value)s %(unit)s is not possible: enter %(low)s to %(high)s.")
            % {
                "label": capfirst(vital.label),
                "value": number_format(number),
                "unit": vital.unit,
                "low": number_format(low),
                "high": number_format(high),
            },
            code="impossible",
        )
    return number.quantize(Decimal(1).scaleb(-vital.decimals), rounding=ROUND_HALF_UP)


def flag(key: str, value) -> str | None:
    """``"low"`` or ``"high"`` when ``value`` is outside the adult normal range, else None."""
    vital = VITALS[key]
    if vital.normal is None or value is None:
        return None
    number = _d(value)
    if number < vital.normal[0]:
        return LOW
    if number > vital.normal[1]:
        return HIGH
    return None


def bmi(weight_kg, height_cm) -> Decimal | None:
    """Body mass index (kg/m²) to one decimal, or None without both values."""
    if weight_kg in (None, "") or height_cm in (None, ""):
        return None
    metres = _d(height_cm) / 100
    if metres <= 0:
        return None
    return (_d(weight_kg) / (metres * metres)).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP)


@dataclass(frozen=True)
class Reading:
    """One value as shown: ``display`` is "120 mmHg"; ``flag`` is low/high/None and
    ``flag_label`` its words (never colour alone)."""

    key: str
    label: str
    value: Decimal
    unit: str
    flag: str | None

    @property
    def display(self) -> str:
        return f"{number_format(self.value)} {self.unit}"

    @property
    def flag_label(self) -> str:
        return {LOW: _("below normal"), HIGH: _("above normal")}.get(self.flag, "")


def assess(values: dict) -> list[Reading]:
    """The readings of ``values`` (``{key: number}``, missing or empty keys left out), in
    display order, each flagged, with BMI derived from weight and height."""
    values = {k: v for k, v in values.items() if v not in (None, "")}
    derived = bmi(values.get("weight"), values.get("height"))
    if derived is not None:
        values["bmi"] = derived
    readings = []
    for key in VITAL_ORDER:
        if key in values:
            vital = VITALS[key]
            number = _d(values[key])
            readings.append(Reading(key, str(vital.label), number, vital.unit, flag(key, number)))
    return readings


class VitalsForm(forms.Form):
    """One set of vitals. Every field is optional (a physiotherapist may take only the heart
    rate), but blood pressure goes in pairs and the diastolic is below the systolic.
    ``cleaned_data`` holds Decimals (or None) and ``bmi`` when weight and height were given;
    ``readings()`` the flagged readings after validation."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for key in TYPED_VITALS:
            vital = VITALS[key]
            step = Decimal(1).scaleb(-vital.decimals)
            self.fields[key] = forms.CharField(
                label=f"{vital.label} ({vital.unit})",
                required=False,
                widget=forms.TextInput(
                    attrs={
                        "inputmode": "decimal",
                        "data-min": str(vital.possible[0]),
                        "data-max": str(vital.possible[1]),
                        "data-step": str(step),
                    }
                ),
            )

    def _clean_vital(self, key):
        raw = (self.cleaned_data.get(key) or "").strip()
        return validate(key, raw) if raw else None

    def clean(self):
        cleaned = super().clean()
        for key in TYPED_VITALS:
            if key in self.errors:
                continue
            try:
                cleaned[key] = self._clean_vital(key)
            except ValidationError as error:
                self.add_error(key, error)
        systolic, diastolic = cleaned.get("systolic"), cleaned.get("diastolic")
        if "systolic" not in self.errors and "diastolic" not in self.errors:
            if (systolic is None) != (diastolic is None):
                missing = "diastolic" if diastolic is None else "systolic"
                self.add_error(
                    missing, _("Blood pressure needs both the systolic and the diastolic value.")
                )
            elif systolic is not None and diastolic >= systolic:
                self.add_error(
                    "diastolic", _("The diastolic pressure must be lower than the systolic.")
                )
        if not self.errors:
            cleaned["bmi"] = bmi(cleaned.get("weight"), cleaned.get("height"))
        return cleaned

    def values(self) -> dict:
        """The values given (keys with a value only), BMI included; after ``is_valid()``."""
        return {k: v for k, v in self.cleaned_data.items() if k in VITALS and v is not None}

    def readings(self) -> list[Reading]:
        return assess(self.values())


@dataclass(frozen=True)
class Scale:
    """A 0–10 wellness score: ``low_label``/``high_label`` say what 0 and 10 mean;
    ``higher_is_better`` tells a chart (and a reader) which way is good."""

    key: str
    label: str
    low_label: str
    high_label: str
    higher_is_better: bool


WELLNESS_SCALES: dict[str, Scale] = {
    # Pain as the 0–10 Numeric Rating Scale (NRS-11).
    "pain": Scale("pain", _("pain"), _("no pain"), _("worst pain imaginable"), False),
    "energy": Scale("energy", _("energy"), _("exhausted"), _("full of energy"), True),
    "sleep_quality": Scale(
        "sleep_quality", _("sleep quality"), _("very poor sleep"), _("excellent sleep"), True
    ),
    "stress": Scale("stress", _("stress"), _("no stress"), _("extreme stress"), False),
    "mood": Scale("mood", _("mood"), _("very low mood"), _("excellent mood"), True),
}


class WellnessForm(forms.Form):
    """The five wellness scores of an encounter, each 0–10 and optional."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for key, scale in WELLNESS_SCALES.items():
            self.fields[key] = forms.IntegerField(
                label=scale.label,
                required=False,
                min_value=0,
                max_value=10,
                help_text=_("0 = %(low)s, 10 = %(high)s")
                % {"low": scale.low_label, "high": scale.high_label},
            )

    def values(self) -> dict:
        return {k: v for k, v in self.cleaned_data.items() if v is not None}
