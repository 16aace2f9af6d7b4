# -*- coding: utf-8 -*-
"""Certificates as PEM texts for the proxy's HTTPS tests, made in memory with ``cryptography``: a test CA
that issues server certificates for given host names (SANs), current or already expired. Keys are EC P-256
(fast)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


def _key_pem(key):
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()).decode()


class TestCA:
    """A CA whose ``cert`` (PEM) a client trusts; ``issue`` signs server certificates."""

    __test__ = False

    def __init__(self, name="dftest-https-ca"):
        self.key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        now = datetime.now(timezone.utc)
        self.name = subject
        self.certificate = (
            x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(self.key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - timedelta(days=1))
            .not_valid_after(now + timedelta(days=2))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(self.key, hashes.SHA256())
        )
        self.cert = self.certificate.public_bytes(serialization.Encoding.PEM).decode()

    def issue(self, *domains, days=1, expired=False, key=None):
        """(certificate PEM, key PEM) for ``domains`` (the first is the common name); ``expired``: it ended
        an hour ago; ``key``: the certificate's private key (a new EC P-256 one if None)."""
        key = key or ec.generate_private_key(ec.SECP256R1())
        now = datetime.now(timezone.utc)
        start, end = (now - timedelta(days=2), now - timedelta(hours=1)) if expired else (now - timedelta(hours=1),
                                                                                          now + timedelta(days=days))
        certificate = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, domains[0])]))
            .issuer_name(self.name).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(start).not_valid_after(end)
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(domain) for domain in domains]), critical=False)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .sign(self.key, hashes.SHA256())
        )
        return certificate.public_bytes(serialization.Encoding.PEM).decode(), _key_pem(key)
