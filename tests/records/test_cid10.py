"""CID-10: the DATASUS table loaded, searched by code and by words, and the sex warning."""

import pytest
from django.core.management import call_command
from django.urls import reverse

from clinic.records import cid10
from clinic.records.models import Cid10Chapter, Cid10Code, Cid10Group

pytestmark = pytest.mark.usefixtures("cid10")


def codes(query, limit=20):
    return [c.code for c in cid10.search(query, limit=limit)]


def test_the_whole_datasus_table_is_loaded():
    assert Cid10Chapter.objects.count() == 22
    assert Cid10Group.objects.count() == 275
    assert Cid10Code.objects.filter(level="category").count() == 2045
    assert Cid10Code.objects.filter(level="subcategory").count() == 12188
    asthma = Cid10Code.objects.get(code="J45.0")
    assert asthma.compact == "J450"
    assert asthma.category.code == "J45"
    assert asthma.group.description == "Doenças crônicas das vias aéreas inferiores"
    assert asthma.group.chapter.number == 10


def test_loading_again_changes_nothing(db):
    before = list(Cid10Code.objects.order_by("pk").values_list("pk", "code", "search_text"))
    call_command("load_cid10", stdout=open("/dev/null", "w"))  # noqa: SIM115
    after = list(Cid10Code.objects.order_by("pk").values_list("pk", "code", "search_text"))
    assert after == before


@pytest.mark.parametrize("query", ["J45.0", "j45.0", "J450", "j450", " J45.0 "])
def test_it_finds_a_code_with_or_without_its_dot(query):
    assert codes(query) == ["J45.0"]


def test_a_category_comes_before_its_subcategories():
    assert codes("J45") == ["J45", "J45.0", "J45.1", "J45.8", "J45.9"]


def test_words_ignore_accents_and_case():
    assert codes("cefaleia")[0] == "R51"
    assert codes("CEFALÉIA") == codes("cefaleia")
    assert "G44.2" in codes("cefaleia tensional")


def test_descriptions_starting_with_the_words_come_first():
    found = codes("asma")
    assert found[:2] == ["J45", "J45.0"]
    # "Estado de mal asmático" contains the word but does not start with it.
    assert found.index("J46") > found.index("J45.9")


def test_lay_terms_find_the_2008_wording():
    assert codes("diabetes tipo 2", limit=1) == ["E11"]
    assert codes("lombalgia") == ["M54.5"]


def test_nothing_matches_nothing():
    assert codes("") == []
    assert codes("xyzzyqq") == []


def test_sex_restrictions_come_from_datasus():
    assert Cid10Code.objects.get(code="N40").sex_restriction == "M"  # no subcategories
    assert Cid10Code.objects.get(code="C53.0").sex_restriction == "F"
    # Every subcategory of C53 (cervix) is F: the category is too.
    assert Cid10Code.objects.get(code="C53").sex_restriction == "F"
    assert Cid10Code.objects.get(code="J45").sex_restriction == ""


def test_a_female_only_code_warns_for_a_male_patient():
    warning = cid10.sex_conflict("C53.0", "male")
    assert "C53.0" in warning
    assert cid10.sex_conflict("c530", "male") == warning


def test_a_male_only_code_warns_for_a_female_patient():
    assert "N40" in cid10.sex_conflict("N40", "female")


@pytest.mark.parametrize("sex", ["female", "intersex", "not_informed", ""])
def test_no_warning_when_nothing_contradicts(sex):
    assert cid10.sex_conflict("C53.0", sex) is None
    assert cid10.sex_conflict("J45.0", "male") is None


def test_the_warning_is_translated(settings):
    from django.utils import translation

    with translation.override("pt-br"):
        assert "feminino" in cid10.sex_conflict("C53.0", "male")


# --- The widget's JSON search -----------------------------------------------------------------
def test_a_professional_searches_codes_as_json(
    client_for, professional_a, django_assert_max_num_queries
):
    client = client_for(professional_a)
    url = reverse("admin:records_cid10code_search")
    with django_assert_max_num_queries(8):
        response = client.get(url, {"q": "hiperplasia da prostata", "sex": "female"})
    assert response.status_code == 200
    first = response.json()["results"][0]
    assert first["code"] == "N40"
    assert first["sex_restriction"] == "M"
    assert "N40" in first["warning"]


def test_the_receptionist_cannot_search_codes(client_for, receptionist_a):
    response = client_for(receptionist_a).get(
        reverse("admin:records_cid10code_search"), {"q": "asma"}
    )
    assert response.status_code == 403


def test_an_anonymous_visitor_is_sent_to_sign_in(client):
    response = client.get(reverse("admin:records_cid10code_search"), {"q": "asma"})
    assert response.status_code == 302


def test_the_operator_browses_the_table_in_constant_queries(
    client_for, superuser, django_assert_max_num_queries
):
    client = client_for(superuser)
    url = reverse("admin:records_cid10code_changelist")
    with django_assert_max_num_queries(12):
        response = client.get(url, {"q": "cefaleia"})
    assert response.status_code == 200
    assert "R51" in response.content.decode()
    assert client.get(reverse("admin:records_cid10code_change", args=[
        Cid10Code.objects.get(code="R51").pk
    ])).status_code == 200  # fmt: skip


def test_no_clinic_role_may_browse_the_table(client_for, professional_a):
    response = client_for(professional_a).get(reverse("admin:records_cid10code_changelist"))
    assert response.status_code == 403
