import random

import factory
from django.contrib.auth import get_user_model

from clinic.choices import (
    ConsentPurpose,
    ConsentSource,
    ConsentStatus,
    ContactChannel,
    MembershipRole,
)
from clinic.management.commands.seed_demo import cnpj_with_check_digits, cpf_with_check_digits
from clinic.models import Clinic, Consent, Membership, Patient, Professional, Room

_rng = random.Random(42)


class ClinicFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Clinic

    name = factory.Sequence(lambda n: f"Clínica {n}")
    cnpj = factory.Sequence(lambda n: cnpj_with_check_digits(f"{n + 10:08d}0001"))


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    first_name = "Rita"
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.com")
    password = factory.PostGenerationMethodCall("set_password", "s3nha-forte-123")

    @factory.post_generation
    def _save(obj, create, extracted, **kwargs):
        if create:
            obj.save()


class MembershipFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Membership

    user = factory.SubFactory(UserFactory)
    clinic = factory.SubFactory(ClinicFactory)
    role = MembershipRole.RECEPTIONIST


class PatientFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Patient

    clinic = factory.SubFactory(ClinicFactory)
    full_name = factory.Sequence(lambda n: f"Paciente {n} da Silva")
    cpf = factory.LazyFunction(lambda: cpf_with_check_digits(_rng))
    phone = factory.Sequence(lambda n: f"+55119{81000000 + n:08d}")
    preferred_channel = ContactChannel.WHATSAPP


class ProfessionalFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Professional

    clinic = factory.SubFactory(ClinicFactory)
    full_name = factory.Sequence(lambda n: f"Dra. Profissional {n}")
    specialty = "Clínica geral"


class RoomFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Room

    clinic = factory.SubFactory(ClinicFactory)
    name = factory.Sequence(lambda n: f"Sala {n}")


class ConsentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Consent

    patient = factory.SubFactory(PatientFactory)
    clinic = factory.LazyAttribute(lambda c: c.patient.clinic)
    channel = ContactChannel.WHATSAPP
    purpose = ConsentPurpose.UTILITY
    status = ConsentStatus.GRANTED
    source = ConsentSource.RECEPTION
