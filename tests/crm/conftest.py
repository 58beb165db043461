import pytest

from crm.services import marketing_settings


@pytest.fixture
def marketing_a(clinic_a):
    conf = marketing_settings(clinic_a)
    conf.technical_director_name = "Dra. Ana Souza"
    conf.technical_director_crm = "CRM/SP 123456"
    conf.save()
    return conf


@pytest.fixture
def form_url(marketing_a):
    return f"/crm/form/{marketing_a.form_key}/"
