import pytest
from django.urls import reverse

from clinic import services
from clinic.models import Membership

pytestmark = pytest.mark.django_db

SWITCH = reverse("admin:switch_clinic")
INDEX = reverse("admin:index")


def test_the_index_shows_the_current_clinics_dashboard(
    clinic_a, patient_a, receptionist_a, client_for
):
    response = client_for(receptionist_a).get(INDEX)
    assert response.context["dashboard"]["clinic"] == clinic_a
    assert response.context["dashboard"]["patients"] == 1
    assert "Clínica Alfa" in response.content.decode()


def test_a_member_of_two_clinics_switches_and_it_sticks(
    clinic_a, clinic_b, receptionist_a, client_for
):
    services.membership_save(
        membership=Membership(user=receptionist_a, clinic=clinic_b, role="receptionist")
    )
    client = client_for(receptionist_a)
    response = client.post(SWITCH, {"clinic": clinic_b.pk, "next": "/admin/clinic/patient/"})
    assert response.status_code == 302
    assert response["Location"] == "/admin/clinic/patient/"
    assert client.get(INDEX).context["dashboard"]["clinic"] == clinic_b


def test_it_never_redirects_to_another_site(clinic_a, receptionist_a, client_for):
    response = client_for(receptionist_a).post(
        SWITCH, {"clinic": clinic_a.pk, "next": "https://evil.example/"}
    )
    assert response["Location"] == INDEX


def test_switching_requires_post(receptionist_a, client_for):
    assert client_for(receptionist_a).get(SWITCH).status_code == 405


def test_a_superuser_may_work_in_all_clinics(clinic_a, clinic_b, superuser, client_for):
    client = client_for(superuser)
    client.post(SWITCH, {"clinic": clinic_a.pk})
    assert client.get(INDEX).context["dashboard"]["clinic"] == clinic_a
    client.post(SWITCH, {"clinic": "all"})
    assert client.get(INDEX).context["dashboard"]["clinic"] is None


def test_a_staff_user_without_clinic_sees_nothing(db, client_for, patient_a):
    from tests.clinic.factories import UserFactory

    loner = UserFactory(is_staff=True)
    client = client_for(loner)
    response = client.get(INDEX)
    assert response.status_code == 200
    assert response.context["dashboard"]["clinic"] is None
