"""``manage.py seed_demo``: the demo clinics, staff sign-ins, professionals, rooms and
patients. Idempotent: running it again changes nothing that is already there.

Later issues extend it with their own data (agenda, payments …).
"""

import base64
import hashlib
import hmac
import random
from datetime import date, timedelta
from importlib import import_module

import phonenumbers
from django.apps import apps
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from clinic import services
from clinic.choices import (
    ConsentPurpose,
    ConsentStatus,
    ContactChannel,
    Council,
    MembershipRole,
    Sex,
    State,
)
from clinic.models import Clinic, Membership, Patient, Professional, Room
from clinic.partner_api.keys import api_key_create
from clinic.partner_api.models import API_KEY_PREFIX, ApiKey, api_key_hash
from clinic.partner_api.scopes import API_SCOPES

FEMALE_NAMES = [
    "Ana", "Maria", "Juliana", "Fernanda", "Patrícia", "Aline", "Camila", "Beatriz", "Larissa",
    "Letícia", "Gabriela", "Mariana", "Vanessa", "Tatiane", "Renata", "Luciana", "Sandra",
    "Cláudia", "Adriana", "Débora", "Rafaela", "Isabela", "Helena", "Laura", "Sofia", "Alice",
    "Manuela", "Valentina", "Heloísa", "Lívia", "Luíza", "Júlia", "Cecília", "Antônia",
]  # fmt: skip
MALE_NAMES = [
    "José", "João", "Antônio", "Francisco", "Carlos", "Paulo", "Pedro", "Lucas", "Luiz",
    "Marcos", "Luís", "Gabriel", "Rafael", "Daniel", "Marcelo", "Bruno", "Eduardo", "Felipe",
    "Rodrigo", "Gustavo", "Thiago", "Leonardo", "Matheus", "Vinícius", "André", "Fábio",
    "Miguel", "Arthur", "Heitor", "Bernardo", "Davi", "Théo", "Samuel", "Otávio",
]  # fmt: skip
SURNAMES = [
    "Silva", "Santos", "Oliveira", "Souza", "Rodrigues", "Ferreira", "Alves", "Pereira",
    "Lima", "Gomes", "Costa", "Ribeiro", "Martins", "Carvalho", "Almeida", "Lopes", "Soares",
    "Fernandes", "Vieira", "Barbosa", "Rocha", "Dias", "Nascimento", "Andrade", "Moreira",
    "Nunes", "Marques", "Machado", "Mendes", "Freitas", "Cardoso", "Ramos", "Gonçalves",
    "Santana", "Teixeira", "Araújo", "Cavalcanti", "Monteiro", "Batista", "Moura",
]  # fmt: skip
DISTRICTS = [
    ("Vila Mariana", "São Paulo", State.SP), ("Pinheiros", "São Paulo", State.SP),
    ("Moema", "São Paulo", State.SP), ("Tatuapé", "São Paulo", State.SP),
    ("Santana", "São Paulo", State.SP), ("Centro", "Santo André", State.SP),
    ("Jardim do Mar", "São Bernardo do Campo", State.SP), ("Centro", "Osasco", State.SP),
]  # fmt: skip
STREETS = [
    "Rua Domingos de Morais", "Avenida Paulista", "Rua Vergueiro", "Rua Augusta",
    "Rua Teodoro Sampaio", "Avenida Ibirapuera", "Rua Tuiuti", "Rua Voluntários da Pátria",
]  # fmt: skip
LEAD_SOURCES = ["Instagram", "Google", "Indicação de paciente", "Convênio", "Site", "Facebook"]
ALLERGIES = ["", "", "", "Dipirona", "Penicilina", "Látex", "Frutos do mar", "AAS"]
CONDITIONS = ["", "", "", "Hipertensão", "Diabetes tipo 2", "Asma", "Hipotireoidismo"]

PROFESSIONALS = [
    ("Dra. Helena Martins", Council.CRM, "123456", "Clínica geral", "#2E86DE"),
    ("Dr. Ricardo Almeida", Council.CRM, "234567", "Ortopedia", "#E67E22"),
    ("Camila Rocha", Council.CREFITO, "345678-F", "Fisioterapia", "#27AE60"),
    ("Juliana Prado", Council.CRP, "06/123456", "Psicologia", "#8E44AD"),
    ("Marcos Vieira", Council.CRN, "45678", "Nutrição", "#16A085"),
    ("Patrícia Nogueira", Council.CREFITO, "567890-F", "Pilates clínico", "#C0392B"),
]
ROOMS = [
    ("Consultório 1", "Maca\nNegatoscópio"),
    ("Consultório 2", "Maca\nBalança"),
    ("Sala de fisioterapia", "Maca\nTENS\nUltrassom terapêutico\nBola suíça"),
    ("Estúdio de pilates", "Reformer\nCadillac\nChair"),
]


def cpf_with_check_digits(rng: random.Random) -> str:
    """A random CPF with correct check digits (never the invalid all-equal ones)."""
    while True:
        base = [rng.randint(0, 9) for _ in range(9)]
        if len(set(base)) > 1:
            break
    for weight_start in (10, 11):
        total = sum(d * w for d, w in zip(base, range(weight_start, 1, -1), strict=False))
        digit = (total * 10) % 11
        base.append(0 if digit == 10 else digit)
    return "".join(map(str, base))


def cnpj_with_check_digits(root: str) -> str:
    """A CNPJ from a 12-digit root, with its check digits."""
    digits = [int(c) for c in root]
    for weights in ([5, 4, 3, 2, 9, 8, 7, 6, 5, 4, 3, 2], [6, 5, 4, 3, 2, 9, 8, 7, 6, 5, 4, 3, 2]):
        remainder = sum(d * w for d, w in zip(digits, weights, strict=True)) % 11
        digits.append(0 if remainder < 2 else 11 - remainder)
    return "".join(map(str, digits))


def mobile_phone(rng: random.Random, area: str = "11") -> str:
    while True:
        candidate = f"+55{area}9{rng.randint(6, 9)}{rng.randint(0, 9_999_999):07d}"
        if phonenumbers.is_valid_number(phonenumbers.parse(candidate)):
            return candidate


#: The demo's portal patient (a patient of both demo clinics).
PORTAL_DEMO_CPF = "52998224725"


class Command(BaseCommand):
    help = "Create the demo clinics, staff users, professionals, rooms and patients."

    def add_arguments(self, parser):
        parser.add_argument(
            "--patients", type=int, default=150, help="Patients of the main clinic."
        )

    def handle(self, *args, **options):
        if not settings.DEBUG:
            raise CommandError(
                "seed_demo creates users with a known password and is refused with DEBUG off."
            )
        password = settings.DEMO_PASSWORD
        rng = random.Random(20261122)  # the same demo on every machine
        with transaction.atomic():
            main = self._clinic(
                "Clínica Demo", "Clínica Demo Saúde Integrada Ltda", "112223330001", rng
            )
            branch = self._clinic(
                "Clínica Demo — Unidade Centro",
                "Clínica Demo Saúde Integrada Ltda",
                "112223330002",
                rng,
            )
            users = self._users(password, main, branch)
            self._professionals(main, users["profissional"])
            self._professionals(branch, None, only=3)
            self._rooms(main)
            self._rooms(branch, only=2)
            created = self._patients(main, options["patients"], rng)
            created += self._patients(branch, max(options["patients"] // 5, 1), rng)
            self._portal_patient([main, branch])
            self._other_apps([main, branch], rng)
            api_key = self._api_key(main)
        self.stdout.write(self.style.SUCCESS(f"Demo ready ({created} new patients)."))
        self.stdout.write(
            "Sign in at /admin/ as admin, recepcao, gerente or profissional "
            f"with the password {password!r}."
        )
        self.stdout.write(
            "Patient portal at /portal/: CPF 529.982.247-25; its sign-in code shows in the "
            'worker\'s log ("console whatsapp → …") and in the admin: '
            "Integrações › Registros do console (/admin/integrations/consolerecord/)."
        )
        self.stdout.write(f"Partner API key of Clínica Demo, every scope (docs/api.md): {api_key}")

    def _api_key(self, clinic) -> str:
        """The demo clinic's partner API key with every scope, for the curl examples of
        docs/api.md: derived from SECRET_KEY, so every run shows the same key without
        storing it (only its hash is kept, as for any key)."""
        digest = hmac.new(
            settings.SECRET_KEY.encode(), b"cuidar-demo-api-key", hashlib.sha256
        ).digest()
        prefix, secret = digest[:4].hex(), base64.urlsafe_b64encode(digest).decode().rstrip("=")
        full = f"{API_KEY_PREFIX}_{prefix}_{secret}"
        if not ApiKey.objects.filter(key_hash=api_key_hash(full)).exists():
            api_key_create(
                clinic=clinic,
                name="Demo (curl examples)",
                scopes=list(API_SCOPES),
                prefix=prefix,
                secret=secret,
            )
        return full

    def _other_apps(self, clinics, rng) -> None:
        """Apps above this one add their demo data in a ``demo`` module with a
        ``seed_demo(*, clinics, rng, stdout)`` function (found like admin.py is: this app
        imports none of them)."""
        for app_config in apps.get_app_configs():
            name = f"{app_config.name}.demo"
            try:
                module = import_module(name)
            except ModuleNotFoundError as exc:
                if exc.name == name:
                    continue
                raise
            module.seed_demo(clinics=clinics, rng=rng, stdout=self.stdout)

    def _clinic(self, name, legal_name, cnpj_root, rng) -> Clinic:
        clinic, _ = Clinic.objects.get_or_create(
            cnpj=cnpj_with_check_digits(cnpj_root),
            defaults={
                "name": name,
                "legal_name": legal_name,
                "phone": "+551133334444",
                "email": "contato@clinicademo.example",
                "street": "Rua Domingos de Morais",
                "number": "2187",
                "district": "Vila Mariana",
                "city": "São Paulo",
                "state": State.SP,
                "postal_code": "04035-000",
            },
        )
        return clinic

    def _users(self, password, main, branch) -> dict:
        User = get_user_model()
        specs = [
            ("admin", "Ana", "Administradora", None),
            ("recepcao", "Rita", "Recepção", MembershipRole.RECEPTIONIST),
            ("gerente", "Gustavo", "Gerente", MembershipRole.MANAGER),
            ("profissional", "Helena", "Martins", MembershipRole.PROFESSIONAL),
        ]
        users = {}
        for username, first, last, role in specs:
            user, created = User.objects.get_or_create(
                username=username,
                defaults={
                    "first_name": first,
                    "last_name": last,
                    "email": f"{username}@clinicademo.example",
                    "is_staff": True,
                    "is_superuser": role is None,
                },
            )
            if created:
                user.set_password(password)
                user.save(update_fields=["password"])
            users[username] = user
            if role is None:
                continue
            clinics = [main, branch] if username in {"recepcao", "gerente"} else [main]
            for clinic in clinics:
                if not Membership.objects.filter(user=user, clinic=clinic).exists():
                    services.membership_save(
                        membership=Membership(user=user, clinic=clinic, role=role)
                    )
        return users

    def _professionals(self, clinic, user, only=None) -> None:
        for index, (name, council, registration, specialty, color) in enumerate(
            PROFESSIONALS[:only]
        ):
            Professional.objects.get_or_create(
                clinic=clinic,
                council=council,
                registration=registration,
                council_state=State.SP,
                defaults={
                    "full_name": name,
                    "specialty": specialty,
                    "color": color,
                    "email": f"prof{index + 1}@clinicademo.example",
                    "user": user if index == 0 else None,
                },
            )

    def _rooms(self, clinic, only=None) -> None:
        for name, resources in ROOMS[:only]:
            Room.objects.get_or_create(clinic=clinic, name=name, defaults={"resources": resources})

    def _portal_patient(self, clinics) -> None:
        """One person who is a patient of both demo clinics, to try the portal with (the
        sign-in code goes to the console provider)."""
        for clinic in clinics:
            if Patient.objects.for_clinic(clinic).filter(cpf=PORTAL_DEMO_CPF).exists():
                continue
            patient = services.patient_create(
                clinic=clinic,
                full_name="Ana Portal de Souza",
                cpf=PORTAL_DEMO_CPF,
                sex=Sex.FEMALE,
                birth_date=date(1990, 5, 17),
                phone="+5511981234567",
                email="ana.portal@example.com",
                preferred_channel=ContactChannel.WHATSAPP,
            )
            for channel in (ContactChannel.WHATSAPP, ContactChannel.EMAIL):
                services.consent_record(
                    patient=patient,
                    channel=channel,
                    purpose=ConsentPurpose.UTILITY,
                    status=ConsentStatus.GRANTED,
                    text_version="2026-01",
                )

    def _patients(self, clinic, count, rng) -> int:
        existing = Patient.objects.for_clinic(clinic).count()
        created = 0
        for _ in range(existing, count):
            sex = rng.choice([Sex.FEMALE, Sex.MALE])
            first = rng.choice(FEMALE_NAMES if sex == Sex.FEMALE else MALE_NAMES)
            full_name = f"{first} {rng.choice(SURNAMES)} {rng.choice(SURNAMES)}"
            district, city, state = rng.choice(DISTRICTS)
            cpf = cpf_with_check_digits(rng)
            if Patient.objects.for_clinic(clinic).filter(cpf=cpf).exists():
                continue
            patient = services.patient_create(
                clinic=clinic,
                full_name=full_name,
                cpf=cpf,
                sex=sex,
                birth_date=date(1950, 1, 1) + timedelta(days=rng.randint(0, 365 * 60)),
                phone=mobile_phone(rng),
                email=(
                    f"{first.lower()}.{rng.randint(1, 999)}@example.com".encode(
                        "ascii", "ignore"
                    ).decode()
                    if rng.random() < 0.8
                    else ""
                ),
                preferred_channel=rng.choices(
                    [ContactChannel.WHATSAPP, ContactChannel.SMS, ContactChannel.EMAIL],
                    weights=[80, 10, 10],
                )[0],
                street=rng.choice(STREETS),
                number=str(rng.randint(10, 3000)),
                district=district,
                city=city,
                state=state,
                postal_code=f"0{rng.randint(1000, 9999)}-{rng.randint(0, 999):03d}",
                allergies=rng.choice(ALLERGIES),
                chronic_conditions=rng.choice(CONDITIONS),
                lead_source=rng.choice(LEAD_SOURCES),
            )
            # Everyone accepts service messages on their channel; about a third opt in to
            # marketing, and a few later change their mind.
            services.consent_record(
                patient=patient,
                channel=patient.preferred_channel,
                purpose=ConsentPurpose.UTILITY,
                status=ConsentStatus.GRANTED,
                text_version="2026-01",
            )
            if rng.random() < 0.35:
                services.consent_record(
                    patient=patient,
                    channel=patient.preferred_channel,
                    purpose=ConsentPurpose.MARKETING,
                    status=ConsentStatus.GRANTED,
                    text_version="2026-01",
                )
                if rng.random() < 0.15:
                    services.consent_revoke(
                        patient=patient,
                        channel=patient.preferred_channel,
                        purpose=ConsentPurpose.MARKETING,
                    )
            created += 1
        return created
