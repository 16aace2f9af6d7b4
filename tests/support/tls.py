# -*- coding: utf-8 -*-
"""Throw-away TLS material for tests, made with the openssl CLI (no extra Python package):
a CA, server certificates for 127.0.0.1/localhost and client certificates, laid out the way
Docker's ``cert_path`` expects (``ca.pem``, ``cert.pem``, ``key.pem``). Keys are EC P-256 (fast)
and certificates are valid for one day."""

from __future__ import annotations

import os
import subprocess

from support.dockerd import TLSFiles


def _openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


class CertificateAuthority:
    """A CA in ``directory``; ``issue`` signs server or client certificates with it."""

    def __init__(self, directory, name="dftest-ca"):
        self.dir = str(directory)
        os.makedirs(self.dir, exist_ok=True)
        self.cert = os.path.join(self.dir, "ca.pem")
        self.key = os.path.join(self.dir, "ca-key.pem")
        _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                 "-keyout", self.key, "-out", self.cert, "-days", "1", "-subj", "/CN=%s" % name, cwd=self.dir)
        os.chmod(self.key, 0o600)

    def issue(self, name, usage, directory=None, trust=None):
        """A certificate ``cert.pem`` and key ``key.pem`` in ``directory`` (default: a sub-directory
        ``name``), for ``usage`` "server" (127.0.0.1, ::1, localhost) or "client", plus ``ca.pem``:
        this CA's certificate, or ``trust`` (another CA's) to build a client that trusts the wrong CA.
        Returns TLSFiles."""
        directory = str(directory or os.path.join(self.dir, name))
        os.makedirs(directory, exist_ok=True)
        key, csr, cert = (os.path.join(directory, part) for part in ("key.pem", "req.csr", "cert.pem"))
        extensions = os.path.join(directory, "extensions.cnf")
        with open(extensions, "w") as handle:
            if usage == "server":
                handle.write("subjectAltName=IP:127.0.0.1,IP:::1,DNS:localhost\nextendedKeyUsage=serverAuth\n")
            else:
                handle.write("extendedKeyUsage=clientAuth\n")
        _openssl("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                 "-keyout", key, "-out", csr, "-subj", "/CN=%s" % name, cwd=directory)
        _openssl("x509", "-req", "-in", csr, "-CA", self.cert, "-CAkey", self.key, "-CAcreateserial",
                 "-out", cert, "-days", "1", "-extfile", extensions, cwd=directory)
        os.chmod(key, 0o600)
        ca_copy = os.path.join(directory, "ca.pem")
        with open(trust or self.cert, "rb") as source, open(ca_copy, "wb") as target:
            target.write(source.read())
        for leftover in (csr, extensions):
            os.unlink(leftover)
        return TLSFiles(ca=ca_copy, cert=cert, key=key)
