"""``tribridge certs make DIR``: a throw-away CA plus server and client certificates.

For tests and first trials of a relay link (mutual TLS).  Production links should use
certificates from the organisation's own CA; nothing here is meant to be kept secret
long (keys are written unencrypted, mode 0600).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

DEFAULT_SANS = ("tribridge-relay", "localhost", "127.0.0.1")


def _name(cn: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "tribridge test"),
            x509.NameAttribute(NameOID.COMMON_NAME, cn),
        ]
    )


def _san(entries: list[str]) -> x509.SubjectAlternativeName:
    names: list[x509.GeneralName] = []
    for e in entries:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(e)))
        except ValueError:
            names.append(x509.DNSName(e))
    return x509.SubjectAlternativeName(names)


def _write(path: Path, data: bytes, secret: bool = False) -> None:
    path.write_bytes(data)
    if secret:
        os.chmod(path, 0o600)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def make_certs(
    directory: str | Path,
    sans: list[str] | None = None,
    clients: list[str] | None = None,
    days: int = 365,
) -> dict[str, Path]:
    """Write ``ca.pem``, ``server.pem``/``server.key`` and, per client name,
    ``NAME.pem``/``NAME.key`` (default one client, ``client``).  Every leaf certificate
    carries both server and client usage and the SANs, so one pair may serve a gateway that
    both accepts and opens links.  Returns the paths by role."""
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    now = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)
    until = now + dt.timedelta(days=days)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = _name("tribridge test CA")
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(until)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(ca_key, hashes.SHA256())
    )
    paths = {"ca": out / "ca.pem"}
    _write(paths["ca"], ca.public_bytes(serialization.Encoding.PEM))
    _write(out / "ca.key", _key_pem(ca_key), secret=True)
    san = _san(list(sans or DEFAULT_SANS))
    for role in ["server", *(clients or ["client"])]:
        key = ec.generate_private_key(ec.SECP256R1())
        cert = (
            x509.CertificateBuilder()
            .subject_name(_name(role))
            .issuer_name(ca_name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now)
            .not_valid_after(until)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(san, critical=False)
            .add_extension(
                x509.ExtendedKeyUsage(
                    [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
                ),
                critical=False,
            )
            .sign(ca_key, hashes.SHA256())
        )
        paths[role] = out / f"{role}.pem"
        _write(paths[role], cert.public_bytes(serialization.Encoding.PEM))
        _write(out / f"{role}.key", _key_pem(key), secret=True)
    return paths
