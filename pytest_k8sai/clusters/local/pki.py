"""Certificates for a local cluster: one CA, the apiserver and webhook serving certs, an admin
client cert and the service-account signing key. Everything is for 127.0.0.1 only."""

from __future__ import annotations

import datetime as dt
import ipaddress
import secrets
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

VALIDITY = dt.timedelta(days=30)
CA_VALIDITY = dt.timedelta(days=365)
LOOPBACK_SANS: list[x509.GeneralName] = [
    x509.DNSName("localhost"),
    x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
]
APISERVER_SANS = LOOPBACK_SANS + [
    x509.DNSName(n) for n in ("kubernetes", "kubernetes.default", "kubernetes.default.svc")
]


@dataclass(frozen=True)
class Pki:
    dir: Path

    def path(self, name: str) -> Path:
        return self.dir / name

    @property
    def ca_crt(self) -> Path:
        return self.path("ca.crt")

    def pair(self, name: str) -> tuple[Path, Path]:
        return self.path(f"{name}.crt"), self.path(f"{name}.key")


def _name(cn: str, org: str | None = None) -> x509.Name:
    attrs = [x509.NameAttribute(NameOID.COMMON_NAME, cn)]
    if org:
        attrs.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, org))
    return x509.Name(attrs)


def _key() -> ec.EllipticCurvePrivateKey:
    # P-256 keys: generated in microseconds, unlike RSA, which keeps cluster start fast.
    return ec.generate_private_key(ec.SECP256R1())


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey) -> None:
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    path.chmod(0o600)


def _write_cert(path: Path, cert: x509.Certificate) -> None:
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))


def _builder(
    subject: x509.Name, issuer: x509.Name, public_key: object, validity: dt.timedelta = VALIDITY
) -> x509.CertificateBuilder:
    now = dt.datetime.now(dt.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + validity)
    )


def _load_or_create_ca(ca_dir: Path) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    """One CA per cache, shared by every local cluster: Kueue reads its metrics cert from a
    fixed path, so all clusters on a machine must be able to verify the one found there."""
    crt, key = ca_dir / "ca.crt", ca_dir / "ca.key"
    if crt.exists() and key.exists():
        cert = x509.load_pem_x509_certificate(crt.read_bytes())
        loaded = serialization.load_pem_private_key(key.read_bytes(), password=None)
        fresh = cert.not_valid_after_utc - dt.datetime.now(dt.UTC) > dt.timedelta(days=2)
        if fresh and isinstance(loaded, ec.EllipticCurvePrivateKey):
            return cert, loaded
    ca_dir.mkdir(parents=True, exist_ok=True)
    ca_key = _key()
    name = _name("k8sai-local-ca")
    cert = (
        _builder(name, name, ca_key.public_key(), CA_VALIDITY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(True, False, False, False, False, True, True, False, False), critical=True
        )
        .sign(ca_key, hashes.SHA256())
    )
    _write_key(key, ca_key)
    _write_cert(crt, cert)
    return cert, ca_key


def signed_by(cert_file: Path, ca_file: Path, min_days: float = 1.0) -> bool:
    """True if ``cert_file`` was issued by the CA in ``ca_file`` and stays valid a while."""
    try:
        cert = x509.load_pem_x509_certificate(cert_file.read_bytes())
        ca = x509.load_pem_x509_certificate(ca_file.read_bytes())
        cert.verify_directly_issued_by(ca)
    except (OSError, ValueError, TypeError, InvalidSignature):
        return False
    return cert.not_valid_after_utc - dt.datetime.now(dt.UTC) > dt.timedelta(days=min_days)


def create_pki(directory: Path, ca_dir: Path) -> Pki:
    """Write every cert and key the local components need, issued by the cache's CA."""
    directory.mkdir(parents=True, exist_ok=True)
    pki = Pki(directory)
    ca, ca_key = _load_or_create_ca(ca_dir)
    ca_name = ca.subject
    _write_cert(pki.ca_crt, ca)

    def leaf(
        name: str,
        subject: x509.Name,
        sans: list[x509.GeneralName] | None,
        usage: list[x509.ObjectIdentifier],
    ) -> None:
        key = _key()
        b = (
            _builder(subject, ca_name, key.public_key())
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage(usage), critical=False)
        )
        if sans:
            b = b.add_extension(x509.SubjectAlternativeName(sans), critical=False)
        crt, key_path = pki.pair(name)
        _write_cert(crt, b.sign(ca_key, hashes.SHA256()))
        _write_key(key_path, key)

    server = [ExtendedKeyUsageOID.SERVER_AUTH]
    leaf("apiserver", _name("kube-apiserver"), APISERVER_SANS, server)
    leaf("serving", _name("k8sai-local-serving"), LOOPBACK_SANS, server)
    # system:masters: every local component acts as cluster admin, as kwokctl's do.
    leaf("admin", _name("k8sai-admin", "system:masters"), None, [ExtendedKeyUsageOID.CLIENT_AUTH])

    sa = _key()
    _write_key(pki.path("sa.key"), sa)
    pki.path("sa.pub").write_bytes(
        sa.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return pki


def new_token() -> str:
    return secrets.token_hex(24)
