"""Clinical documents: render + sign one prescription-sized PDF (issue 22).

One process, no database: a one-page A4 prescription (``tests/integrations/documents``'
HTML) rendered with WeasyPrint, then signed PAdES AD-RB with an A1 from the DEV PKI (RSA
2048), the signer checks included (chain, validity, key usage, CRL from memory, CPF).
100 runs of each, after 3 warm-up runs; median and p95 of wall time in ms, and the median
CPU time of the process (less moved by other work on the machine):

- ``render_sign``: ``render_pdf`` + ``sign_pdf`` — what a professional waits for;
- ``render``: ``render_pdf`` alone;
- ``sign`` (the floor the issue names): ``sign_pdf`` of the already-rendered PDF;
- ``textbook_sign``: the same PDF signed the way pyHanko's docs teach (``PdfSigner`` with a
  ``SimpleSigner``, PAdES subfilter, no ICP-Brasil policy, no signer checks) — what our
  checks and policy cost beside it;
- ``validate``: ``validate_pdf`` of the signed PDF.

Run: ``python bench/documents.py [N]``; prints a JSON object.
"""

import json
import os
import statistics
import sys
import time
from io import BytesIO
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

import django  # noqa: E402

django.setup()

import logging  # noqa: E402

logging.disable(logging.INFO)

from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter  # noqa: E402
from pyhanko.sign import fields, signers  # noqa: E402

from integrations.documents import (  # noqa: E402
    DocumentType,
    Trust,
    load_a1,
    render_pdf,
    sign_pdf,
    validate_pdf,
)
from integrations.documents.devca import DevPKI  # noqa: E402
from tests.integrations.documents.conftest import CPF, PASSWORD, PRESCRIPTION_HTML  # noqa: E402


def timed(fn, n: int) -> dict:
    for _ in range(3):
        fn()
    samples, cpu = [], []
    for _ in range(n):
        started, started_cpu = time.perf_counter(), time.process_time()
        fn()
        samples.append((time.perf_counter() - started) * 1000)
        cpu.append((time.process_time() - started_cpu) * 1000)
    samples.sort()
    return {
        "median_ms": round(statistics.median(samples), 1),
        "p95_ms": round(samples[int(0.95 * (len(samples) - 1))], 1),
        "max_ms": round(samples[-1], 1),
        # CPU time of this process: what the code costs, less moved by a busy machine.
        "cpu_median_ms": round(statistics.median(cpu), 1),
        "runs": n,
    }


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 100
    pki = DevPKI.create()
    person = pki.issue_person(name="MARIA DA SILVA SOUZA", cpf=CPF)
    identity = load_a1(pki.pkcs12(person, PASSWORD), PASSWORD)
    trust = Trust(roots=(pki.root.certificate,), crls=tuple(pki.crls()))
    pdf = render_pdf(PRESCRIPTION_HTML)

    def sign(data):
        return sign_pdf(
            data,
            identity,
            document_type=DocumentType.PRESCRIPTION,
            council=("12345", "SP"),
            cpf=CPF,
            trust=trust,
        )

    def textbook():
        writer = IncrementalPdfFileWriter(BytesIO(pdf))
        meta = signers.PdfSignatureMetadata(
            field_name="Signature1", subfilter=fields.SigSeedSubFilter.PADES
        )
        out = BytesIO()
        signers.PdfSigner(meta, signer=identity.signer).sign_pdf(writer, output=out)
        return out.getvalue()

    signed = sign(pdf)
    assert validate_pdf(signed, trust).is_valid
    result = {
        "pdf_bytes": len(pdf),
        "signed_bytes": len(signed),
        "render_sign": timed(lambda: sign(render_pdf(PRESCRIPTION_HTML)), n),
        "render": timed(lambda: render_pdf(PRESCRIPTION_HTML), n),
        "sign": timed(lambda: sign(pdf), n),
        "textbook_sign": timed(textbook, n),
        "validate": timed(lambda: validate_pdf(signed, trust), n),
        "load_avg": os.getloadavg(),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
