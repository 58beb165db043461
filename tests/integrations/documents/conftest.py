"""A development PKI shaped like ICP-Brasil (root → issuing CA → e-CPF A1), made once per
test session (RSA keys cost time), and helpers around it. Never a real certificate."""

import datetime as dt

import pytest

from integrations.documents import Trust, load_a1
from integrations.documents.devca import DevPKI

CPF = "52998224725"
OTHER_CPF = "11144477735"
PASSWORD = "senha-do-a1"
NAME = "MARIA DA SILVA SOUZA"

PRESCRIPTION_HTML = """<!doctype html><html lang="pt-BR"><head><meta charset="utf-8">
<title>Receita</title></head><body>
<h1>Receituário simples</h1>
<p>Paciente: João Conceição Ávila — CPF 111.444.777-35</p>
<ol><li>Dipirona 500 mg — 1 comprimido de 6 em 6 horas, se dor ou febre, por 3 dias.</li>
<li>Amoxicilina 500 mg — 1 cápsula de 8 em 8 horas por 7 dias.</li></ol>
<p>Dra. Maria da Silva Souza — CRM 12345/SP — Rua das Acácias, 100, São Paulo/SP</p>
<p>São Paulo, 6 de dezembro de 2026, 10:00</p></body></html>"""


@pytest.fixture(scope="session")
def pki():
    return DevPKI.create()


@pytest.fixture(scope="session")
def person(pki):
    return pki.issue_person(name=NAME, cpf=CPF)


@pytest.fixture(scope="session")
def a1_file(pki, person):
    return pki.pkcs12(person, PASSWORD)


@pytest.fixture(scope="session")
def identity(a1_file):
    return load_a1(a1_file, PASSWORD)


@pytest.fixture
def trust(pki):
    return Trust(roots=(pki.root.certificate,), crls=tuple(pki.crls()))


@pytest.fixture(scope="session")
def pdf():
    from integrations.documents import render_pdf

    return render_pdf(PRESCRIPTION_HTML)


def issue(pki, **kwargs):
    """A fresh person certificate (``DevPKI.issue_person`` kwargs) as a loaded A1."""
    kwargs.setdefault("name", NAME)
    kwargs.setdefault("cpf", CPF)
    person = pki.issue_person(**kwargs)
    return person, load_a1(pki.pkcs12(person, PASSWORD), PASSWORD)


def days(n: int) -> dt.datetime:
    return dt.datetime.now(dt.UTC) + dt.timedelta(days=n)
