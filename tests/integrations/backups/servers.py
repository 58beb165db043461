"""Throwaway servers for the backup integration tests: a TLS certificate authority, the
S3-compatible server (``s3_server``) on a free port of 127.0.0.1, and PostgreSQL clusters
(``integrations.backups.cluster``)."""

from __future__ import annotations

import datetime
import ssl
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from integrations.backups.cluster import free_port

HERE = Path(__file__).resolve().parent
KEY, SECRET, REGION = "testing", "testing", "us-east-1"


def make_tls(folder: Path) -> tuple[Path, Path, Path]:
    """A CA and a certificate for ``localhost`` signed by it: (ca, cert, key)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Cuidar test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    # pgBackRest checks the endpoint's name against the certificate's DNS names (not IP
    # addresses): the endpoint is "localhost", which resolves to 127.0.0.1 here.
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    folder.mkdir(parents=True, exist_ok=True)
    paths = folder / "ca.pem", folder / "cert.pem", folder / "key.pem"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
    )
    for path in paths[:2]:
        path.chmod(0o644)
    return paths


class S3Server:
    """moto's S3 behind gunicorn with TLS, bound to 127.0.0.1 on a free port."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.ca, self.cert, self.key = make_tls(folder / "tls")
        self.port = free_port()
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"https://localhost:{self.port}"

    def start(self, timeout: float = 30) -> S3Server:
        log = open(self.folder / "s3.log", "wb")  # noqa: SIM115 - kept open for the process
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "--chdir",
                str(HERE),
                "--worker-class",
                "gthread",
                "--workers",
                "1",  # moto keeps the buckets in this one process's memory
                "--threads",
                "8",
                "--certfile",
                str(self.cert),
                "--keyfile",
                str(self.key),
                "--bind",
                f"127.0.0.1:{self.port}",
                "s3_server:app",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        context = ssl.create_default_context(cafile=str(self.ca))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(self.url + "/", context=context, timeout=2)  # noqa: S310
                return self
            except OSError:
                if self.process.poll() is not None:
                    break
                time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"the S3 server did not start: {(self.folder / 's3.log').read_text()}")

    def client(self):
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.url,
            aws_access_key_id=KEY,
            aws_secret_access_key=SECRET,
            region_name=REGION,
            verify=str(self.ca),
        )

    def objects(self, bucket: str) -> dict[str, bytes]:
        """Every object in the bucket: key → content."""
        s3 = self.client()
        keys = [
            item["Key"]
            for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket)
            for item in page.get("Contents", [])
        ]
        return {key: s3.get_object(Bucket=bucket, Key=key)["Body"].read() for key in keys}

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self.process = None
