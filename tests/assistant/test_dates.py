"""Portuguese date and time phrases as patients write them, read with a fixed reference:
Wednesday 11/03/2026, 10:00 in America/Sao_Paulo. The corpus must be read ≥ 98 % exactly
with no day/month swap (issue 24); the rate is printed with ``-s``."""

from datetime import date, time

import pytest

from clinic.messaging.assistant.dates import When, describe, parse_when

TODAY = date(2026, 3, 11)  # a Wednesday


def d(month: int, day: int, year: int = 2026) -> date:
    return date(year, month, day)


def day(month, dd, year=2026, *, at=None, period=None):
    one = d(month, dd, year)
    return When(one, one, time.fromisoformat(at) if at else None, period)


def span(first, last, *, at=None, period=None):
    return When(first, last, time.fromisoformat(at) if at else None, period)


def only(*, at=None, period=None):
    return When(None, None, time.fromisoformat(at) if at else None, period)


CORPUS = [
    # relative days
    ("hoje", day(3, 11)),
    ("hj", day(3, 11)),
    ("hoje a tarde", day(3, 11, period="afternoon")),
    ("hj de tarde", day(3, 11, period="afternoon")),
    ("hoje as 16h", day(3, 11, at="16:00")),
    ("amanhã", day(3, 12)),
    ("amanha", day(3, 12)),
    ("amnh", day(3, 12)),
    ("amanhã de manhã", day(3, 12, period="morning")),
    ("amanha de manha", day(3, 12, period="morning")),
    ("amanha cedo", day(3, 12, period="early")),
    ("amanhã bem cedinho", day(3, 12, period="early")),
    ("amanhã à tarde", day(3, 12, period="afternoon")),
    ("amanha no fim da tarde", day(3, 12, period="late_afternoon")),
    ("amanhã à noite", day(3, 12, period="evening")),
    ("amanhã às 9h", day(3, 12, at="09:00")),
    ("amanha 14h", day(3, 12, at="14:00")),
    ("amanhã 10 e meia", day(3, 12, at="10:30")),
    ("amanha na hora do almoço", day(3, 12, period="lunch")),
    ("amanhã ao meio-dia", day(3, 12, at="12:00")),
    ("depois de amanhã", day(3, 13)),
    ("depois de amanha de manha", day(3, 13, period="morning")),
    ("dps de amanha as 15", day(3, 13, at="15:00")),
    ("daqui a 2 dias", day(3, 13)),
    ("daqui 3 dias", day(3, 14)),
    ("daqui a uma semana", day(3, 18)),
    ("em duas semanas", day(3, 25)),
    ("daqui a 10 dias à tarde", day(3, 21, period="afternoon")),
    # weekdays
    ("sexta", day(3, 13)),
    ("sexta-feira", day(3, 13)),
    ("sexta feira", day(3, 13)),
    ("na sexta", day(3, 13)),
    ("próxima sexta", day(3, 13)),
    ("proxima sexta-feira", day(3, 13)),
    ("sexta que vem", day(3, 20)),
    ("sexta-feira que vem", day(3, 20)),
    ("sexta da semana que vem", day(3, 20)),
    ("sexta da próxima semana", day(3, 20)),
    ("quinta que vem", day(3, 19)),
    ("próxima quinta", day(3, 12)),
    ("quinta", day(3, 12)),
    ("quinta de manhã", day(3, 12, period="morning")),
    ("segunda", day(3, 16)),
    ("segunda-feira", day(3, 16)),
    ("segunda que vem", day(3, 16)),
    ("segunda às 8h", day(3, 16, at="08:00")),
    ("terça", day(3, 17)),
    ("terca", day(3, 17)),
    ("terça-feira a tarde", day(3, 17, period="afternoon")),
    ("terça que vem às 10", day(3, 17, at="10:00")),
    ("quarta", day(3, 18)),
    ("quarta que vem", day(3, 18)),
    ("essa quarta", day(3, 11)),
    ("nesta sexta", day(3, 13)),
    ("sábado", day(3, 14)),
    ("sabado de manha", day(3, 14, period="morning")),
    ("sábado que vem", day(3, 21)),
    ("domingo", day(3, 15)),
    ("seg-feira", day(3, 16)),
    ("qui feira", day(3, 12)),
    ("próxima seg", day(3, 16)),
    ("sex que vem", day(3, 20)),
    ("pode ser na quinta às 15h30?", day(3, 12, at="15:30")),
    ("tem horário na sexta de tarde?", day(3, 13, period="afternoon")),
    ("queria pra segunda cedo", day(3, 16, period="early")),
    ("terça 9:30", day(3, 17, at="09:30")),
    # dates
    ("dia 12", day(3, 12)),
    ("dia 12 às 15h", day(3, 12, at="15:00")),
    ("dia 12 as 15", day(3, 12, at="15:00")),
    ("dia 5", day(4, 5)),
    ("dia 30", day(3, 30)),
    ("dia 31 de manhã", day(3, 31, period="morning")),
    ("dia 11", day(3, 11)),
    ("no dia 20 à tarde", day(3, 20, period="afternoon")),
    ("06/02", day(2, 6, 2027)),
    ("06/04", day(4, 6)),
    ("15/03", day(3, 15)),
    ("1/4", day(4, 1)),
    ("01/04", day(4, 1)),
    ("12/03/2026", day(3, 12)),
    ("12/03/26", day(3, 12)),
    ("25/12", day(12, 25)),
    ("13/04 às 9h", day(4, 13, at="09:00")),
    ("13/04 9h", day(4, 13, at="09:00")),
    ("05/05 as 14:00", day(5, 5, at="14:00")),
    ("20.03", day(3, 20)),
    ("20-03", day(3, 20)),
    ("12 de março", day(3, 12)),
    ("12 de marco", day(3, 12)),
    ("1º de abril", day(4, 1)),
    ("1 de abril às 10h", day(4, 1, at="10:00")),
    ("20 de abril de 2026", day(4, 20)),
    ("3 de maio", day(5, 3)),
    ("15 de jan", day(1, 15, 2027)),
    ("dia 2 de junho de manhã", day(6, 2, period="morning")),
    # spans
    ("semana que vem", span(d(3, 16), d(3, 22))),
    ("próxima semana", span(d(3, 16), d(3, 22))),
    ("semana que vem de manhã", span(d(3, 16), d(3, 22), period="morning")),
    ("fim de semana", span(d(3, 14), d(3, 15))),
    ("essa semana", span(d(3, 11), d(3, 15))),
    ("mês que vem", span(d(4, 1), d(4, 30))),
    # times without a day
    ("15h", only(at="15:00")),
    ("às 15:30", only(at="15:30")),
    ("15h30", only(at="15:30")),
    ("as 3 da tarde", only(at="15:00")),
    ("3h da tarde", only(at="15:00")),
    ("cinco da tarde", only(at="17:00")),
    ("7 da noite", only(at="19:00")),
    ("8 da manhã", only(at="08:00")),
    ("as 9", only(at="09:00")),
    ("as 2", only(at="14:00")),
    ("14 horas", only(at="14:00")),
    ("meio dia", only(at="12:00")),
    ("meio-dia e meia", only(at="12:30")),
    ("10 e meia", only(at="10:30")),
    ("de manhã", only(period="morning")),
    ("pela manha", only(period="morning")),
    ("a tarde", only(period="afternoon")),
    ("de tardinha", only(period="afternoon")),
    ("fim da tarde", only(period="late_afternoon")),
    ("final da tarde", only(period="late_afternoon")),
    ("à noite", only(period="evening")),
    ("primeira hora", only(period="early")),
    ("hora do almoço", only(period="lunch")),
]

NOT_DATES = ["oi", "quero marcar", "quanto custa", "31/02", "obrigado", "sim"]


def test_the_corpus_has_at_least_a_hundred_phrases():
    assert len(CORPUS) >= 100


def test_the_corpus_is_read_exactly_with_no_day_month_swap():
    wrong, swaps = [], []
    for phrase, expected in CORPUS:
        got = parse_when(phrase, today=TODAY)
        if got != expected:
            wrong.append((phrase, expected, got))
            e, g = expected.first_day, got.first_day if got else None
            if e and g and (e.day, e.month) == (g.month, g.day) and e != g:
                swaps.append(phrase)
    rate = 1 - len(wrong) / len(CORPUS)
    print(f"\ndate phrases: {len(CORPUS)}, read exactly: {rate:.1%}")
    for phrase, expected, got in wrong:
        print(f"  {phrase!r}: expected {expected}, got {got}")
    assert swaps == []
    assert rate >= 0.98, wrong


@pytest.mark.parametrize("phrase", NOT_DATES)
def test_words_that_are_no_date_read_as_nothing(phrase):
    assert parse_when(phrase, today=TODAY) is None


def test_the_absolute_date_is_echoed_as_a_patient_reads_it():
    from datetime import datetime

    assert describe(datetime(2026, 3, 13, 9, 0)) == "sexta, 13/03, 9h"
    assert describe(datetime(2026, 3, 16, 14, 30)) == "segunda, 16/03, 14h30"
