"""The templates every clinic starts with, in pt-BR (the clinic's data, not the interface's:
a clinic edits them, so they are not translated). An anamnesis (first visit) and an
evolution (follow-up) for each specialty of ClinicalTemplate.Specialty but "other".

The general practice anamnesis follows the items of CFM 1.638/2002 art. 5 (b): complaint,
history, examination, hypotheses, plan; physiotherapy records pain (0–10 numeric scale) and
range of motion by goniometry (each field's minimum and maximum bound what can be measured,
with a margin above the usual adult range: they refuse typing errors, they do not judge);
nutrition records anthropometry; integrative care records acupuncture sessions. Vitals and
the wellness scales are the encounter's own sections (clinic.records.vitals), not template fields.

Changing a default here reaches new clinics only; existing clinics keep (and may have
edited) theirs.
"""

from __future__ import annotations


def _text(key, label, **extra):
    return {"type": "text", "key": key, "label": label, **extra}


def _long(key, label, **extra):
    return {"type": "long_text", "key": key, "label": label, **extra}


def _heading(label):
    return {"type": "heading", "label": label}


def _number(key, label, unit, low, high, decimals=0, **extra):
    return {
        "type": "number",
        "key": key,
        "label": label,
        "unit": unit,
        "min": low,
        "max": high,
        "decimals": decimals,
        **extra,
    }


def _choice(key, label, choices, **extra):
    return {"type": "choice", "key": key, "label": label, "choices": choices, **extra}


def _multiple(key, label, choices, **extra):
    return {"type": "multiple_choice", "key": key, "label": label, "choices": choices, **extra}


def _scale(key, label, low, high, **extra):
    return {
        "type": "scale",
        "key": key,
        "label": label,
        "min_label": low,
        "max_label": high,
        **extra,
    }


def _yes_no(key, label, **extra):
    return {"type": "yes_no", "key": key, "label": label, **extra}


def _date(key, label, **extra):
    return {"type": "date", "key": key, "label": label, **extra}


_REQUIRED = {"required": True}
_PAIN = ("sem dor", "pior dor imaginável")
_SIDES = ["Direito", "Esquerdo", "Bilateral"]

GENERAL_ANAMNESIS = [
    _heading("Anamnese"),
    _long("queixa_principal", "Queixa principal", **_REQUIRED),
    _long("historia_doenca_atual", "História da doença atual", **_REQUIRED),
    _long("antecedentes_pessoais", "Antecedentes pessoais"),
    _long("antecedentes_familiares", "Antecedentes familiares"),
    _long("medicamentos_em_uso", "Medicamentos em uso"),
    _yes_no("alergias", "Tem alergias?"),
    _text("alergias_quais", "Quais alergias", help="Medicamentos, alimentos, látex …"),
    _choice("tabagismo", "Tabagismo", ["Nunca fumou", "Ex-fumante", "Fumante"]),
    _choice("etilismo", "Consumo de álcool", ["Não bebe", "Ocasional", "Frequente"]),
    _choice(
        "atividade_fisica",
        "Atividade física",
        ["Sedentário", "1–2 vezes/semana", "3 ou mais vezes/semana"],
    ),
    _heading("Exame físico"),
    _choice("estado_geral", "Estado geral", ["Bom", "Regular", "Ruim"]),
    _long("exame_fisico", "Exame físico", **_REQUIRED),
    _heading("Avaliação e conduta"),
    _long("exames_complementares", "Exames complementares solicitados / resultados"),
    _long("hipoteses_diagnosticas", "Hipóteses diagnósticas", **_REQUIRED),
    _long("conduta", "Conduta / plano terapêutico", **_REQUIRED),
    _date("retorno", "Retorno previsto"),
]

GENERAL_EVOLUTION = [
    _long(
        "subjetivo",
        "Subjetivo (S)",
        help="O que o paciente relata desde a última consulta.",
        **_REQUIRED,
    ),
    _long("objetivo", "Objetivo (O)", help="Exame físico e resultados de exames."),
    _long("avaliacao", "Avaliação (A)", **_REQUIRED),
    _long("plano", "Plano (P)", **_REQUIRED),
]

PHYSIO_ANAMNESIS = [
    _heading("Anamnese"),
    _long("queixa_principal", "Queixa principal", **_REQUIRED),
    _long("historia_doenca_atual", "História da doença atual"),
    _text("diagnostico_medico", "Diagnóstico médico / encaminhamento"),
    _heading("Dor"),
    _scale("dor_intensidade", "Intensidade da dor (EVA)", *_PAIN, **_REQUIRED),
    _multiple(
        "dor_localizacao",
        "Localização da dor",
        [
            "Cervical",
            "Torácica",
            "Lombar",
            "Ombro",
            "Cotovelo",
            "Punho/mão",
            "Quadril",
            "Joelho",
            "Tornozelo/pé",
        ],
    ),
    _choice(
        "dor_tipo", "Tipo de dor", ["Em pontada", "Em queimação", "Em peso", "Irradiada", "Difusa"]
    ),
    _choice(
        "dor_piora",
        "Piora com",
        ["Movimento", "Repouso", "Período da manhã", "Fim do dia", "Sem padrão"],
    ),
    _heading("Amplitude de movimento (goniometria)"),
    _choice("lado_avaliado", "Lado avaliado", _SIDES),
    _number("adm_ombro_flexao", "Ombro — flexão", "°", 0, 200),
    _number("adm_ombro_abducao", "Ombro — abdução", "°", 0, 200),
    _number("adm_ombro_rotacao_externa", "Ombro — rotação externa", "°", 0, 120),
    _number("adm_cotovelo_flexao", "Cotovelo — flexão", "°", 0, 170),
    _number("adm_quadril_flexao", "Quadril — flexão", "°", 0, 150),
    _number("adm_joelho_flexao", "Joelho — flexão", "°", 0, 170),
    _number("adm_joelho_extensao", "Joelho — extensão (déficit negativo)", "°", -30, 20),
    _number("adm_tornozelo_dorsiflexao", "Tornozelo — dorsiflexão", "°", 0, 40),
    _choice(
        "forca_muscular",
        "Força muscular (escala de Oxford)",
        [
            "0 — sem contração",
            "1 — esboço",
            "2 — sem gravidade",
            "3 — contra a gravidade",
            "4 — contra resistência",
            "5 — normal",
        ],
    ),
    _long("testes_especiais", "Testes especiais"),
    _heading("Plano"),
    _long("objetivos", "Objetivos do tratamento", **_REQUIRED),
    _long("conduta", "Conduta / plano terapêutico", **_REQUIRED),
    _number("sessoes_previstas", "Sessões previstas", "sessões", 1, 100),
]

PHYSIO_EVOLUTION = [
    _scale("dor_intensidade", "Intensidade da dor hoje (EVA)", *_PAIN, **_REQUIRED),
    _long("conduta_realizada", "Conduta realizada", **_REQUIRED),
    _choice(
        "resposta", "Resposta ao tratamento", ["Melhora", "Sem alteração", "Piora"], **_REQUIRED
    ),
    _long("adm_reavaliada", "Amplitude de movimento reavaliada"),
    _long("observacoes", "Observações"),
]

PSYCHOLOGY_ANAMNESIS = [
    _heading("Demanda"),
    _long("motivo_consulta", "Motivo da consulta", **_REQUIRED),
    _long("historia", "História do problema atual", **_REQUIRED),
    _choice(
        "encaminhamento",
        "Encaminhamento",
        ["Procura espontânea", "Médico", "Escola", "Empresa", "Justiça", "Outro"],
    ),
    _heading("Contexto"),
    _long("historia_familiar", "História familiar e relações"),
    _choice("suporte_social", "Rede de apoio", ["Boa", "Parcial", "Ausente"]),
    _multiple(
        "substancias", "Uso de substâncias", ["Álcool", "Tabaco", "Cannabis", "Outras", "Nenhuma"]
    ),
    _yes_no("tratamento_anterior", "Já fez acompanhamento psicológico ou psiquiátrico?"),
    _long("medicamentos_psiquiatricos", "Medicamentos psiquiátricos em uso"),
    _heading("Avaliação de risco"),
    _yes_no("ideacao_suicida", "Ideação suicida", **_REQUIRED),
    _choice("risco", "Risco avaliado", ["Baixo", "Moderado", "Alto"], **_REQUIRED),
    _heading("Plano"),
    _long("hipotese", "Hipótese diagnóstica / formulação do caso", **_REQUIRED),
    _long("plano_terapeutico", "Plano terapêutico", **_REQUIRED),
]

PSYCHOLOGY_EVOLUTION = [
    _long("temas", "Temas da sessão", **_REQUIRED),
    _long("intervencoes", "Intervenções", **_REQUIRED),
    _long("observacoes", "Observações clínicas"),
    _choice("risco", "Risco avaliado", ["Baixo", "Moderado", "Alto"]),
    _long("proxima_sessao", "Plano para a próxima sessão"),
]

NUTRITION_ANAMNESIS = [
    _heading("Objetivo"),
    _choice(
        "objetivo",
        "Objetivo principal",
        [
            "Emagrecimento",
            "Ganho de massa muscular",
            "Reeducação alimentar",
            "Controle glicêmico",
            "Gestação",
            "Outro",
        ],
        **_REQUIRED,
    ),
    _long("historia_clinica", "História clínica e exames recentes"),
    _heading("Antropometria"),
    _number("peso", "Peso", "kg", 0.3, 500, 1, **_REQUIRED),
    _number("altura", "Altura", "cm", 30, 260, **_REQUIRED),
    _number("circunferencia_cintura", "Circunferência da cintura", "cm", 30, 250, 1),
    _number("circunferencia_quadril", "Circunferência do quadril", "cm", 30, 250, 1),
    _number("circunferencia_braco", "Circunferência do braço", "cm", 10, 80, 1),
    _number("dobra_tricipital", "Dobra cutânea tricipital", "mm", 1, 80, 1),
    _number("percentual_gordura", "Gordura corporal", "%", 1, 75, 1),
    _heading("Hábitos alimentares"),
    _long("recordatorio_24h", "Recordatório alimentar de 24 horas", **_REQUIRED),
    _number("ingestao_hidrica", "Ingestão de água", "L/dia", 0, 15, 1),
    _multiple(
        "restricoes",
        "Restrições alimentares",
        ["Lactose", "Glúten", "Vegetariano", "Vegano", "Alergia alimentar", "Nenhuma"],
    ),
    _choice(
        "funcionamento_intestinal",
        "Funcionamento intestinal",
        ["Regular", "Constipado", "Diarreico"],
    ),
    _heading("Plano"),
    _long("plano_alimentar", "Plano alimentar / orientações", **_REQUIRED),
    _date("retorno", "Retorno previsto"),
]

NUTRITION_EVOLUTION = [
    _number("peso", "Peso", "kg", 0.3, 500, 1, **_REQUIRED),
    _number("circunferencia_cintura", "Circunferência da cintura", "cm", 30, 250, 1),
    _scale("adesao", "Adesão ao plano alimentar", "nenhuma", "total"),
    _long("observacoes", "Observações", **_REQUIRED),
    _long("ajustes", "Ajustes no plano"),
]

ACUPUNCTURE_ASSESSMENT = [
    _heading("Avaliação"),
    _long("queixa_principal", "Queixa principal", **_REQUIRED),
    _long("historia", "História e hábitos (sono, alimentação, emoções)"),
    _scale("dor_intensidade", "Intensidade da dor", *_PAIN),
    _heading("Diagnóstico energético (MTC)"),
    _text("lingua", "Língua"),
    _text("pulso", "Pulso"),
    _long("diagnostico_mtc", "Diagnóstico segundo a MTC", **_REQUIRED),
    _heading("Sessão"),
    _multiple(
        "tecnicas",
        "Técnicas",
        [
            "Acupuntura sistêmica",
            "Auriculoterapia",
            "Eletroacupuntura",
            "Moxabustão",
            "Ventosaterapia",
        ],
        **_REQUIRED,
    ),
    _long("pontos", "Pontos utilizados", **_REQUIRED),
    _number("permanencia", "Tempo de permanência das agulhas", "min", 1, 120),
    _long("reacoes", "Reações durante ou após a sessão"),
    _long("plano", "Plano de tratamento", **_REQUIRED),
]

ACUPUNCTURE_SESSION = [
    _scale("dor_intensidade", "Intensidade da dor hoje", *_PAIN),
    _choice(
        "resposta",
        "Resposta desde a última sessão",
        ["Melhora", "Sem alteração", "Piora"],
        **_REQUIRED,
    ),
    _multiple(
        "tecnicas",
        "Técnicas",
        [
            "Acupuntura sistêmica",
            "Auriculoterapia",
            "Eletroacupuntura",
            "Moxabustão",
            "Ventosaterapia",
        ],
        **_REQUIRED,
    ),
    _long("pontos", "Pontos utilizados", **_REQUIRED),
    _number("permanencia", "Tempo de permanência das agulhas", "min", 1, 120),
    _long("observacoes", "Observações"),
]


def _template(name, kind, specialty, fields):
    return {"name": name, "kind": kind, "specialty": specialty, "fields": fields}


#: name, kind, specialty (ClinicalTemplate's choices) and fields of each default template.
DEFAULT_TEMPLATES = [
    _template("Anamnese — Clínica geral", "anamnesis", "general", GENERAL_ANAMNESIS),
    _template("Evolução — Clínica geral (SOAP)", "evolution", "general", GENERAL_EVOLUTION),
    _template("Avaliação — Fisioterapia", "anamnesis", "physiotherapy", PHYSIO_ANAMNESIS),
    _template("Evolução — Fisioterapia", "evolution", "physiotherapy", PHYSIO_EVOLUTION),
    _template("Anamnese — Psicologia", "anamnesis", "psychology", PSYCHOLOGY_ANAMNESIS),
    _template("Evolução — Psicologia (sessão)", "evolution", "psychology", PSYCHOLOGY_EVOLUTION),
    _template("Avaliação — Nutrição", "anamnesis", "nutrition", NUTRITION_ANAMNESIS),
    _template("Evolução — Nutrição", "evolution", "nutrition", NUTRITION_EVOLUTION),
    _template("Avaliação — Acupuntura", "anamnesis", "integrative", ACUPUNCTURE_ASSESSMENT),
    _template("Sessão — Acupuntura", "evolution", "integrative", ACUPUNCTURE_SESSION),
]
