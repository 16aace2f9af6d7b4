# -*- coding: utf-8 -*-
# Copyright: Contributors to the dockerflow.flow collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The proxy's TLS certificates: checked here, recorded in Consul, written into every proxy node.

A certificate is recorded once in Consul KV, under ``dockerflow/proxy/certificates/<proxy>/<name>``,
and every proxy node of that proxy (same ``proxy_name``) writes the recorded ones into its
configuration volume at each run (ProxyFlow._ensure_proxy). The proxy's name is part of the key as it
is of the routes (proxy_routes): several proxies (internal, public) may share a Consul, and a
certificate of one must not open port 443 on the other.

Nothing here ever puts key material in a message: a bad key is named by its parameter only.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from ansible_collections.dockerflow.flow.plugins.module_utils.consul_client import KV_PREFIX
from ansible_collections.dockerflow.flow.plugins.module_utils.errors import FlowError
from ansible_collections.dockerflow.flow.plugins.module_utils.proxy_files import CONFIG_DIR

try:
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization
    from cryptography.x509.oid import NameOID

    CRYPTOGRAPHY_IMPORT_ERROR = None
except ImportError as exc:  # pragma: no cover - reported when a certificate is given
    CRYPTOGRAPHY_IMPORT_ERROR = str(exc)

if TYPE_CHECKING:
    from ansible_collections.dockerflow.flow.plugins.module_utils.consul_client import ConsulClient
    from ansible_collections.dockerflow.flow.plugins.module_utils.proxy_node import ProxyNode
    from ansible_collections.dockerflow.flow.plugins.module_utils.steps.context import FlowContext

PARAMETER = "proxy_certificates"
SOURCES = ("file", "acme")
# Served when the client's SNI names no recorded certificate (and to clients without SNI).
DEFAULT_NAME = "default"
# The file name certs/<name>.pem, a KV key and a crt-list line: one plain word.
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
# A set of certificates is written into certs/<its digest>/ (with its crt-list) and never changed afterwards: the
# running configuration names its own set, so a set HAProxy refuses (haproxy -c) never reaches a worker, not even
# after a restart. The sets that no longer run are removed after a run succeeded (stale_sets_command).
CERTS_DIR = "certs"
CRT_LIST_FILE = "certs.list"


def crt_list_path(digest: str) -> str:
    return "%s/%s/%s/%s" % (CONFIG_DIR, CERTS_DIR, digest, CRT_LIST_FILE)


def stale_sets_command(digest: str) -> list[str]:
    """Removes every set in certs/ but ``digest``'s, and the crt-list that releases before sets had in CONFIG_DIR."""
    script = 'cd "$1" && rm -f -- %s && find %s -mindepth 1 -maxdepth 1 ! -name "$2" -exec rm -rf -- {} +' % (
        CRT_LIST_FILE, CERTS_DIR)
    return ["bash", "-c", script, "stale-certificates", CONFIG_DIR, digest]


def certificates_prefix(proxy_name: str) -> str:
    return "%s/proxy/certificates/%s/" % (KV_PREFIX, proxy_name)


@dataclass(frozen=True)
class Certificate:
    """One certificate as recorded: ``cert`` is the PEM chain (leaf first), ``key`` its PEM private key."""

    name: str
    cert: str
    key: str = field(repr=False)
    source: str = "file"
    domains: tuple[str, ...] = ()
    not_after: str = ""  # ISO 8601, UTC

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "cert": self.cert, "key": self.key, "source": self.source,
                "domains": list(self.domains), "not_after": self.not_after}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Certificate:
        return cls(name=data["name"], cert=data["cert"], key=data["key"], source=data.get("source") or "file",
                   domains=tuple(data.get("domains") or ()), not_after=data.get("not_after") or "")

    @property
    def fingerprint(self) -> str:
        """SHA-256 of the certificate chain and key: what changes when the file the proxy loads changes."""
        return hashlib.sha256((self.cert + self.key).encode("utf-8")).hexdigest()[:16]

    def summary(self) -> dict[str, Any]:
        """What results and diffs show of it: never the key."""
        return {"name": self.name, "source": self.source, "domains": list(self.domains), "not_after": self.not_after,
                "fingerprint": self.fingerprint}

    def pem(self) -> str:
        """The file HAProxy loads: the chain, then the key."""
        return _ending_newline(self.cert) + _ending_newline(self.key)


def _ending_newline(text: str) -> str:
    return text if text.endswith("\n") else text + "\n"


def _require_cryptography() -> None:
    if CRYPTOGRAPHY_IMPORT_ERROR is not None:
        raise FlowError("The cryptography Python package is required for %s: %s." % (PARAMETER, CRYPTOGRAPHY_IMPORT_ERROR))


def checked_certificate(parameter: str, name: object, cert: str, key: str, source: str = "file",
                        now: datetime | None = None) -> Certificate:
    """A Certificate from PEM texts, or FlowError naming ``parameter`` (``proxy_certificates[N]``): the name is a
    plain word, the chain and key parse, the key is the certificate's, and the certificate has not expired."""
    _require_cryptography()
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise FlowError("%s.name=%r is not valid: use a plain word (letters, digits, - and _, up to 64 characters)."
                        % (parameter, name if isinstance(name, str) else str(name)[:64]))
    if source not in SOURCES:
        raise FlowError("%s.source=%r is not valid: use one of %s." % (parameter, source, ", ".join(SOURCES)))
    try:
        chain = x509.load_pem_x509_certificates(cert.encode("utf-8"))
    except (ValueError, TypeError, AttributeError):
        raise FlowError("%s.cert is not a PEM certificate (-----BEGIN CERTIFICATE-----)." % parameter)
    try:
        private_key = serialization.load_pem_private_key(key.encode("utf-8"), password=None)
    except Exception:  # noqa: BLE001 - ValueError, TypeError, UnsupportedAlgorithm: their text may quote the input
        raise FlowError("%s.key is not an unencrypted PEM private key (RSA or EC)." % parameter)
    leaf = chain[0]
    spki = serialization.PublicFormat.SubjectPublicKeyInfo
    if (private_key.public_key().public_bytes(serialization.Encoding.DER, spki)
            != leaf.public_key().public_bytes(serialization.Encoding.DER, spki)):
        raise FlowError("%s.key does not match %s.cert (certificate %s): give the key the certificate was issued for."
                        % (parameter, parameter, name))
    not_after = _not_after(leaf)
    if not_after <= (now or datetime.now(timezone.utc)):
        raise FlowError("%s.cert (certificate %s) expired on %s: give a current certificate."
                        % (parameter, name, _iso(not_after)))
    return Certificate(name=name, cert=cert, key=key, source=source, domains=_domains(leaf), not_after=_iso(not_after))


def _not_after(certificate: Any) -> datetime:
    moment = getattr(certificate, "not_valid_after_utc", None)  # cryptography 42+
    return moment if moment is not None else certificate.not_valid_after.replace(tzinfo=timezone.utc)


def _iso(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _domains(certificate: Any) -> tuple[str, ...]:
    """The host names the certificate is for (its DNS SANs, else its common name): how SNI picks it."""
    try:
        names = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        return tuple(names.get_values_for_type(x509.DNSName))
    except x509.ExtensionNotFound:
        return tuple(str(attribute.value) for attribute in certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME))


def given_certificates(entries: Sequence[Mapping[str, Any]] | None,
                       read: Callable[[str], str] | None = None) -> list[Certificate]:
    """``proxy_certificates`` as given (name, cert or cert_path, key or key_path; paths read on the module host with
    ``read``), checked; FlowError names the entry and field."""
    read = read or _read_text
    certificates: list[Certificate] = []
    for index, entry in enumerate(entries or ()):
        parameter = "%s[%d]" % (PARAMETER, index)
        texts = {}
        for what in ("cert", "key"):
            text, path = entry.get(what), entry.get(what + "_path")
            if bool(text) == bool(path):
                raise FlowError("%s: give exactly one of %s and %s_path." % (parameter, what, what))
            texts[what] = text if text else _read_path(read, path, "%s.%s_path" % (parameter, what))
        certificate = checked_certificate(parameter, entry.get("name"), texts["cert"], texts["key"],
                                          source=entry.get("source") or "file")
        if any(known.name == certificate.name for known in certificates):
            raise FlowError("%s.name=%s is given twice: each certificate needs its own name." % (parameter, certificate.name))
        certificates.append(certificate)
    return certificates


def _read_text(path: str) -> str:
    with open(path, encoding="utf-8") as handle:
        return handle.read()


def _read_path(read: Callable[[str], str], path: str, parameter: str) -> str:
    try:
        return read(path)
    except (OSError, UnicodeDecodeError) as error:
        raise FlowError("%s %s cannot be read on the module's host: %s." % (parameter, path,
                                                                            getattr(error, "strerror", None) or error))


class CertificateStore:
    """The certificates of one proxy in Consul KV, one JSON document a name."""

    def __init__(self, client: ConsulClient, proxy_name: str) -> None:
        self.client = client
        self.prefix = certificates_prefix(proxy_name)

    def read_all(self) -> dict[str, Certificate]:
        _index, entries = self.client.call("reading the proxy's certificates", self.client.api.kv.get, self.prefix,
                                           recurse=True)
        recorded = {}
        for entry in entries or []:
            try:
                certificate = Certificate.from_dict(json.loads(entry["Value"] or b"{}"))
            except (ValueError, KeyError, TypeError):
                raise FlowError("Certificate %s in Consul is not a certificate document; fix or delete that key."
                                % entry["Key"])
            recorded[certificate.name] = certificate
        return recorded

    def record(self, certificate: Certificate) -> None:
        text = json.dumps(certificate.as_dict(), sort_keys=True)
        if not self.client.call("recording certificate %s" % certificate.name, self.client.api.kv.put,
                                self.prefix + certificate.name, text):
            raise FlowError("Consul did not record certificate %s." % certificate.name)


def changed_certificates(given: Iterable[Certificate], recorded: Mapping[str, Certificate]) -> list[Certificate]:
    """The given certificates whose content differs from what is recorded (or that are not recorded)."""
    return [certificate for certificate in given if recorded.get(certificate.name) != certificate]


def ordered(certificates: Mapping[str, Certificate]) -> list[Certificate]:
    """The default certificate first (the first line of the crt-list is what a client without a matching SNI
    gets), then by name."""
    return sorted(certificates.values(), key=lambda certificate: (certificate.name != DEFAULT_NAME, certificate.name))


def certificates_digest(certificates: Mapping[str, Certificate]) -> str | None:
    """What the rendered configuration carries of the certificates (None: no HTTPS): a new certificate content
    makes a new configuration generation, whose reload loads it."""
    if not certificates:
        return None
    text = " ".join("%s:%s" % (certificate.name, certificate.fingerprint) for certificate in ordered(certificates))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def certificate_files(certificates: Mapping[str, Certificate]) -> dict[str, str]:
    """The set's files (its PEM files and crt-list, all private) by file name in CONFIG_DIR; none without
    certificates."""
    digest = certificates_digest(certificates)
    if digest is None:
        return {}
    directory = "%s/%s" % (CERTS_DIR, digest)
    listed = ordered(certificates)
    files = {"%s/%s.pem" % (directory, certificate.name): certificate.pem() for certificate in listed}
    files["%s/%s" % (directory, CRT_LIST_FILE)] = "".join(
        "%s/%s/%s.pem\n" % (CONFIG_DIR, directory, certificate.name) for certificate in listed)
    return files


class ProxyCertificates:
    """The certificates one run of a proxy renders and writes, every render of it: those recorded in Consul (read
    once, when first needed), with those given to this run (``given``, checked) in place of the recorded ones of
    their names."""

    def __init__(self, client: ConsulClient, node: ProxyNode, given: Iterable[Certificate] = ()) -> None:
        self.store = CertificateStore(client, node.name)
        self.node = node
        self.written = False  # whether this run wrote the current set into the node (files)
        self.given = list(given)
        self.new: list[Certificate] = []  # given ones whose content is not recorded yet
        self._before: dict[str, Certificate] | None = None
        self._current: dict[str, Certificate] = {}

    def current(self) -> dict[str, Certificate]:
        if self._before is None:
            self._before = self.store.read_all()
            self.new = changed_certificates(self.given, self._before)
            self._current = dict(self._before, **{certificate.name: certificate for certificate in self.new})
        return self._current

    def digest(self) -> str | None:
        return certificates_digest(self.current())

    def files(self) -> dict[str, str]:
        """The current set's files, which this run then writes into the node."""
        self.written = True
        return certificate_files(self.current())

    def recorded(self, run: Callable[[], dict[str, Any]], flow: FlowContext) -> dict[str, Any]:
        """The result of ``run``, a run of the proxy with the current certificates. If it succeeded, the new ones are
        recorded now (not in check mode), so every other proxy node takes them at its next run, and a node this run
        wrote them into and activated a configuration in keeps only their set (it runs it now: a run that changed
        nothing ran it already, so it has nothing stale to remove); the result lists them, never a key. If it failed,
        the new set it wrote goes (discard)."""
        try:
            result = run()
        except FlowError:
            self.discard(flow)
            raise
        node, current = self.node, self.current()
        digest = certificates_digest(current)
        if digest and self.written and result.get("changed") and not flow.check_mode:
            code, output = node.exec(stale_sets_command(digest))
            if code:
                flow.warn("Could not remove the certificates no longer served from proxy %s: %s"
                          % (node.name, output.strip()[:200]))
        for certificate in self.new if not flow.check_mode else ():
            self.store.record(certificate)
            flow.progress("recorded certificate %s (%s, until %s)"
                          % (certificate.name, ", ".join(certificate.domains), certificate.not_after))
        if current:
            result["certificates"] = [certificate.summary() for certificate in ordered(current)]
        if self.new:
            result["changed"] = True
            before = {name: certificate.summary() for name, certificate in (self._before or {}).items()}
            after = {name: certificate.summary() for name, certificate in current.items()}
            diff = {"before": json.dumps(before, indent=1, sort_keys=True) + "\n",
                    "after": json.dumps(after, indent=1, sort_keys=True) + "\n",
                    "before_header": "certificates (recorded)", "after_header": "certificates (new)"}
            result["diff"] = [result["diff"], diff] if result.get("diff") else diff
        return result

    def discard(self, flow: FlowContext) -> None:
        """Remove the new set this failed run wrote into the node, unless its haproxy.cfg names it: no refused key is
        left behind, and what runs keeps its files."""
        digest = certificates_digest(self.current())
        if not (self.written and self.new and digest) or flow.check_mode:
            return
        try:
            if crt_list_path(digest) not in (self.node.current_config() or ""):
                self.node.exec(["rm", "-rf", "--", "%s/%s/%s" % (CONFIG_DIR, CERTS_DIR, digest)])
        except FlowError as error:  # the run's own failure is what the task reports
            flow.warn("Could not remove the refused certificates from proxy %s: %s" % (self.node.name, error.msg))
