"""The clinical record in a real browser (Chromium, 1366×768, a consulting room's screen): a
doctor signs in, opens their day, starts the encounter of the patient who arrived, writes
the sections with vitals, scales and a CID-10 code, signs it (re-entering the password),
then corrects the plan with a justification — both versions stay visible. The receptionist
opening the same patient sees when and by whom, never the clinical content. axe-core checks
the encounter page; every context is closed."""

from datetime import timedelta
from pathlib import Path

import pytest
from django.urls import reverse
from django.utils import timezone

from clinic import services as clinic_services
from clinic.choices import MembershipRole
from clinic.models import Membership
from clinic.records.models import Cid10Code, Encounter, Entry
from scheduling.choices import AppointmentStatus as S
from scheduling.models import Appointment
from tests.clinic.factories import PatientFactory, ProfessionalFactory, UserFactory
from tests.scheduling.factories import AppointmentFactory, ServiceFactory

pytestmark = pytest.mark.django_db(transaction=True)

PASSWORD = "s3nha-forte-123"
SCREENSHOT = Path(__file__).resolve().parents[2] / "var" / "screenshots" / "encounter.png"
EXAM = "Orofaringe hiperemiada, sem exsudato"


def _user(username, clinic, role):
    user = UserFactory(username=username)
    user.set_password(PASSWORD)
    user.save()
    clinic_services.membership_save(membership=Membership(user=user, clinic=clinic, role=role))
    return user


@pytest.fixture
def consulting_room(clinic_a, settings):
    settings.CUIDAR_REAUTH_REQUIRED = True  # signing asks for the password again
    doctor_user = _user("dra_helena_e2e", clinic_a, MembershipRole.PROFESSIONAL)
    doctor = ProfessionalFactory(
        clinic=clinic_a,
        user=doctor_user,
        full_name="Dra. Helena Martins",
        council="CRM",
        registration="123456",
        council_state="SP",
    )
    patient = PatientFactory(
        clinic=clinic_a,
        full_name="Joana Souza",
        birth_date="1980-05-17",
        sex="female",
        postal_code="01310-100",
        street="Av. Paulista",
        number="1000",
        district="Bela Vista",
        city="São Paulo",
        state="SP",
        allergies="Dipirona",
    )
    patient.mother_name = "Ana Souza"
    patient.birthplace_city, patient.birthplace_state = "Campinas", "SP"
    patient.save()
    Cid10Code.objects.get_or_create(
        code="J02.9",
        defaults={
            "compact": "J029",
            "level": "subcategory",
            "description": "Faringite aguda não especificada",
            "search_text": "j02.9 j029 faringite aguda nao especificada",
        },
    )
    now = timezone.now()
    appointment = AppointmentFactory(
        service=ServiceFactory(clinic=clinic_a, name="Consulta clínica"),
        professional=doctor,
        patient=patient,
        start=now - timedelta(minutes=10),
        status=S.ARRIVED,
        arrived_at=now - timedelta(minutes=15),
    )
    receptionist = _user("recepcao_e2e", clinic_a, MembershipRole.RECEPTIONIST)
    return doctor_user, receptionist, patient, appointment


def _context(browser, live_server):
    context = browser.new_context(
        base_url=live_server.url,
        viewport={"width": 1366, "height": 768},
        locale="pt-BR",
        timezone_id="America/Sao_Paulo",
    )
    page = context.new_page()
    page.set_default_timeout(15_000)
    return context, page


def _sign_in(page, user):
    page.goto("/admin/login/")
    page.fill("input[name=username]", user.username)
    page.fill("input[name=password]", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_url("**/admin/")


def test_a_doctor_writes_signs_and_corrects_and_reception_sees_no_content(
    consulting_room, browser, live_server, axe_check
):
    doctor_user, receptionist, patient, appointment = consulting_room
    context, page = _context(browser, live_server)
    try:
        _sign_in(page, doctor_user)
        # One click from the first page to the day.
        page.click(f"a[href='{reverse('admin:scheduling_my_day')}']")
        row = page.locator("table.my-day tr", has_text="Joana")
        assert "15 min" in row.inner_text()
        row.locator("button[type=submit]").click()
        page.wait_for_selector("#encounter-form")
        encounter = Encounter.objects.get(appointment=appointment)
        assert Appointment.objects.get(pk=appointment.pk).status == S.IN_PROGRESS

        page.fill("#id_chief_complaint", "Dor de garganta há 3 dias")
        page.fill("#id_physical_exam", EXAM)
        page.fill("#id_vital_systolic", "128")
        page.fill("#id_vital_diastolic", "82")
        page.fill("#id_vital_heart_rate", "88")
        page.fill("#id_vital_temperature", "37,9")
        page.fill("#id_scale_pain", "6")
        page.fill("#id_scale_sleep_quality", "4")
        page.fill("#id_cid_principal", "j029")
        page.fill("#id_plan", "Hidratação; retorno em 7 dias")
        # Autosave keeps the draft while she types (a static script, no inline JS).
        page.wait_for_selector("#autosave-status:has-text(':')")
        assert Entry.objects.filter(encounter=encounter, kind="plan", status="draft").exists()
        page.click("#encounter-form button[type=submit]")
        page.wait_for_selector("#sign-button")
        axe_check(page, "encounter page")
        SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOT), full_page=True)

        # Signing asks for the password again, then she signs.
        page.click("#sign-button")
        page.fill("input[name=password]", PASSWORD)
        page.click("form.accounts-form button[type=submit]")
        page.wait_for_selector("#sign-button")
        page.click("#sign-button")
        page.wait_for_selector(".record-status-finalized")
        encounter.refresh_from_db()
        assert encounter.is_finalized
        assert not page.locator("#encounter-form").count()  # locked: no form of any kind

        # A correction with its justification: both versions stay on the page.
        plan = Entry.objects.get(encounter=encounter, kind="plan")
        page.click(f"#entry-{plan.pk} a.button")
        page.fill("#id_text", "Hidratação; retorno em 10 dias")
        page.fill("#id_justification", "Prazo de retorno digitado errado")
        page.click("#content-main form button[type=submit]")
        page.wait_for_selector(".record-corrected")
        body = page.inner_text("#content-main")
        assert "retorno em 7 dias" in body and "retorno em 10 dias" in body
        assert "Prazo de retorno digitado errado" in body
        assert Entry.objects.get(supersedes=plan).version == 2
    finally:
        context.close()

    context, page = _context(browser, live_server)
    try:
        _sign_in(page, receptionist)
        page.goto(reverse("admin:records_encounter_patient", args=[patient.pk]))
        body = page.inner_text("#content-main")
        assert "Dra. Helena Martins" in body  # that she was seen, and by whom
        for clinical in (EXAM, "retorno", "Dipirona", "J02.9", "Faringite"):
            assert clinical not in body
        response = page.goto(reverse("admin:records_encounter_record", args=[encounter.pk]))
        assert response.status == 403
        assert EXAM not in page.content()
    finally:
        context.close()


def test_a_physiotherapy_assessment_template_is_filled_signed_and_shown(
    consulting_room, browser, live_server, axe_check
):
    """The professional picks a specialty template on the encounter page, fills its scale and
    a number with its unit, signs; the signed encounter shows the answers with the labels of
    the version they were written with."""
    from clinic.models import Professional
    from clinic.records import services
    from clinic.records.models import ClinicalTemplate

    doctor_user, _receptionist, patient, _appointment = consulting_room
    doctor = Professional.objects.get(user=doctor_user)
    encounter = services.open_encounter(
        clinic=patient.clinic, patient=patient, professional=doctor, by=doctor_user
    )
    template = ClinicalTemplate.objects.get(clinic=patient.clinic, name="Avaliação — Fisioterapia")
    context, page = _context(browser, live_server)
    try:
        _sign_in(page, doctor_user)
        page.goto(reverse("admin:records_encounter_record", args=[encounter.pk]))
        page.fill("#id_physical_exam", "Dor à palpação de L4-L5")
        # Choosing the template saves what was typed and loads its form.
        page.select_option("#id_use_anamnesis", value=str(template.pk))
        page.wait_for_selector("#id_tpl_anamnesis_adm_ombro_flexao")
        assert page.input_value("#id_physical_exam") == "Dor à palpação de L4-L5"
        assert "Ombro — flexão (°)" in page.inner_text("#group-use_anamnesis")
        page.fill("#id_tpl_anamnesis_queixa_principal", "Lombalgia há 2 meses")
        page.check("#id_tpl_anamnesis_dor_intensidade_7")
        page.fill("#id_tpl_anamnesis_adm_ombro_flexao", "120")
        page.fill("#id_tpl_anamnesis_objetivos", "Reduzir a dor")
        page.fill("#id_tpl_anamnesis_conduta", "Cinesioterapia 2x/semana")
        page.fill("#id_cid_principal", "J02.9")
        page.fill("#id_plan", "Retorno em 15 dias")
        with page.expect_navigation():
            page.click("#save-draft")
        page.wait_for_selector("#sign-button")
        axe_check(page, "encounter page with a template")
        missing = page.locator(".record-missing")
        errors = page.locator(".errorlist").all_inner_texts()
        assert not missing.count(), (missing.inner_text(), errors)

        page.click("#sign-button")
        page.fill("input[name=password]", PASSWORD)
        page.click("form.accounts-form button[type=submit]")
        page.wait_for_selector("#sign-button")
        page.click("#sign-button")
        page.wait_for_selector(".record-status-finalized")
        body = page.inner_text("#content-main")
        assert "Ombro — flexão" in body and "120 °" in body
        assert "7 de 10" in body and "Lombalgia há 2 meses" in body
        assert "Avaliação — Fisioterapia (v1)" in body
        entry = Entry.objects.get(encounter=encounter, kind="anamnesis")
        assert entry.template_version.template == template
        assert entry.content["answers"]["dor_intensidade"] == 7
    finally:
        context.close()
