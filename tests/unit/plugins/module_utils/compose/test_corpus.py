# -*- coding: utf-8 -*-
"""The Compose corpus (issue 12): public Compose files nobody here wrote, read as the flow reads them.

Every file of ``tests/unit/compose_corpus`` (see its README for sources and licences) is loaded
with ``load_project`` and every service normalized with ``ComposeProject.service``, the calls
``flow_deploy`` makes. Each service must normalize, or be refused for one of the REASONS below
(documented in the corpus README); a refusal for any other reason fails the test, as does a count
of normalized services under FLOOR (today's figure: raise it when the reader learns more). The
figures are printed (``make unit PYTEST_ARGS="-s -k corpus"``) and recorded as properties
(``--junitxml``).
"""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

import pytest
import yaml

from ansible_collections.dockerflow.flow.plugins.module_utils.compose import load_project
from ansible_collections.dockerflow.flow.plugins.module_utils.errors import FlowError

CORPUS = Path(__file__).resolve().parents[3] / "compose_corpus"
# The services that normalize today; a change that lowers it is a regression.
FLOOR = 153
COMPOSE_REFUSES_TOO = "Compose refuses it too"
NOT_YET = "not supported yet (issue 12 in progress)"
BLUE_GREEN = "cannot work for blue-green"
SDK_BUILD = "a build key the Docker SDK's build cannot send"
MODEL_RUNNER = "needs Docker Model Runner, which this engine lacks"
WINDOWS_ONLY = "a Windows container setting, which a Linux engine refuses"
NEWER_API = "needs an engine API the Docker SDK 7.1 cannot send"
_KEYS_RE = re.compile(r"key\(s\) (.+?) are not supported")
# Refusals that are not about keys: the message pattern, and the reason it stands for.
REASONS = (
    (re.compile(r"deploy\.mode='global' is not supported: blue-green"), BLUE_GREEN),
    # What Compose itself rejects: a service with neither image nor build, a name used and not
    # declared, a volume whose container path is not absolute.
    (re.compile(r"has neither image nor build\.$"), COMPOSE_REFUSES_TOO),
    # Build keys only BuildKit honours, or the SDK has no argument for (compose/build.py): Flow builds with the
    # Docker SDK's build call, which drives the engine's classic builder.
    (re.compile(r": build\.\S+ (needs BuildKit|lists \d+ platforms: a multi-platform build needs BuildKit|"
                r"cannot be sent by the Docker SDK's build call)"), SDK_BUILD),
    (re.compile(r"is not declared under the top-level (networks|volumes) key\.$"), COMPOSE_REFUSES_TOO),
    (re.compile(r"needs an absolute container path\.$"), COMPOSE_REFUSES_TOO),
    (re.compile(r"(secrets|configs)\.\S+: cannot read file .*: No such file or directory\.$"), COMPOSE_REFUSES_TOO),
    # Keys of a newer engine API than the SDK speaks (gw_priority: API 1.48).
    (re.compile(r"needs Docker Engine API [0-9.]+, which the Docker SDK [0-9.]+ Flow uses cannot send"), NEWER_API),
    (re.compile(r"models needs Docker Model Runner, which this engine lacks"), MODEL_RUNNER),
    (re.compile(r"credential_spec sets a Windows container's gMSA identity"), WINDOWS_ONLY),
    # An include of a file the example does not ship (the spec's fragments name files they leave out).
    (re.compile(r"^include: compose file \S+ does not exist\.$"), COMPOSE_REFUSES_TOO),
)


def _schema_keys() -> tuple[set[str], set[str]]:
    """The top-level and service keys of the Compose spec's JSON schema (kept beside the corpus)."""
    schema = json.loads((CORPUS / "compose-spec.schema.json").read_text(encoding="utf-8"))
    return set(schema["properties"]), set(schema["definitions"]["service"]["properties"])


def classify(message: str) -> tuple[str, list[str]]:
    """The reason a refusal stands for and, for keys, which keys; ``("", [])`` when it is not listed."""
    keys = _KEYS_RE.search(message)
    if keys:
        named = [key.strip() for key in keys.group(1).split(",")]
        top_keys, service_keys = _schema_keys()
        known = top_keys if "top-level" in message else service_keys
        if "networks." in message or all(key in known for key in named):
            return NOT_YET, named
        return COMPOSE_REFUSES_TOO, [key for key in named if key not in known]
    for pattern, reason in REASONS:
        if pattern.search(message):
            return reason, []
    return "", []


def corpus_files() -> list[Path]:
    return sorted(path for path in CORPUS.rglob("*") if path.suffix in (".yaml", ".yml"))


def read_corpus() -> dict:
    """Load every file, normalize every service; the figures, and the refusals no reason covers."""
    figures: dict = {"files": 0, "files loaded": 0, "services": 0, "normalized": 0}
    reasons: Counter = Counter()
    keys: Counter = Counter()
    unlisted = []
    container_names = 0
    by_source: Counter = Counter()
    for path in corpus_files():
        figures["files"] += 1
        source = path.relative_to(CORPUS).parts[0]
        services = list((yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get("services") or {})
        figures["services"] += len(services)
        by_source[source + ": services"] += len(services)
        try:
            project = load_project(str(path), environ={}, profiles=["*"])  # every profile: what Compose runs when asked
            figures["files loaded"] += 1
        except FlowError as exc:
            project, failures = None, [(name, str(exc)) for name in services]
        if project is not None:
            failures = []
            for name in services:
                try:
                    container_names += project.service(name).container_name is not None
                    figures["normalized"] += 1
                    by_source[source + ": normalized"] += 1
                except FlowError as exc:
                    failures.append((name, str(exc)))
        for name, message in failures:
            reason, named = classify(message)
            if not reason:
                unlisted.append("%s: %s: %s" % (path.relative_to(CORPUS), name, message))
            reasons[reason or "UNLISTED"] += 1
            keys.update(named if reason == NOT_YET else [])
    figures["by source"] = dict(sorted(by_source.items()))
    figures["refused, by reason"] = dict(reasons.most_common())
    figures["not supported yet, by key"] = dict(keys.most_common())
    figures["normalized with container_name (a side target only, not a scaled target)"] = container_names
    runnable = figures["services"] - reasons[COMPOSE_REFUSES_TOO]
    figures["normalized of those Compose runs"] = "%d of %d (%.0f %%)" % (
        figures["normalized"], runnable, 100.0 * figures["normalized"] / max(runnable, 1))
    return {"figures": figures, "unlisted": unlisted}


def test_corpus_is_there():
    assert len(corpus_files()) >= 100
    assert (CORPUS / "README.md").is_file()


def test_every_refusal_is_a_listed_reason_and_the_floor_holds(record_property):
    result = read_corpus()
    figures = result["figures"]
    print("\nCompose corpus figures:\n" + json.dumps(figures, indent=2))
    for name, value in figures.items():
        record_property(name, value)
    assert result["unlisted"] == [], "refusals for reasons that are not listed:\n" + "\n".join(result["unlisted"])
    assert figures["normalized"] >= FLOOR


@pytest.mark.parametrize(
    "message, expected",
    [
        ("f: service a: key(s) build, stdin_open are not supported (...). Supported: x.", (NOT_YET, ["build", "stdin_open"])),
        ("f: top-level key(s) secrets are not supported (supported: name).", (NOT_YET, ["secrets"])),
        ("f: service foo: key(s) DNS are not supported. Supported: x.", (COMPOSE_REFUSES_TOO, ["DNS"])),
        ("f: service a: key(s) build, key1 are not supported. Supported: x.", (COMPOSE_REFUSES_TOO, ["key1"])),
        ("f: service a: networks.n key(s) priority are not supported.", (NOT_YET, ["priority"])),
        ("f: service foo has neither image nor build.", (COMPOSE_REFUSES_TOO, [])),
        ("f: service a: build.ssh needs BuildKit (an SSH agent for the build), which ...", (SDK_BUILD, [])),
        ("f: service a: deploy.mode='global' is not supported: blue-green needs ...", (BLUE_GREEN, [])),
        ("include: compose file /x/common/compose.yaml does not exist.", (COMPOSE_REFUSES_TOO, [])),
        ("f: service a: networks.n.gw_priority needs Docker Engine API 1.48, which the Docker SDK 7.1 Flow uses "
         "cannot send; remove it.", (NEWER_API, [])),
        ("f: top-level models needs Docker Model Runner, which this engine lacks (...); remove it.", (MODEL_RUNNER, [])),
        ("f: service a: credential_spec sets a Windows container's gMSA identity (...); remove it.", (WINDOWS_ONLY, [])),
        ("f: something new went wrong.", ("", [])),
    ],
)
def test_classify(message, expected):
    assert classify(message) == expected
