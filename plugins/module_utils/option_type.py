# -*- coding: utf-8 -*-
# Copyright: Contributors to the dockerflow.flow collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""One option of the flow modules, as the table in options.py defines it, and its argument spec entry."""

from __future__ import annotations

from dataclasses import dataclass

DEPLOY, SCALE, PROXY, CANARY, STOP_OLD, ROLLBACK, INFO, RELEASE = (
    "flow_deploy", "flow_scale", "flow_proxy", "flow_canary", "flow_stop_old", "flow_rollback", "flow_info",
    "flow_release")
MODULES = (DEPLOY, SCALE, PROXY, CANARY, STOP_OLD, ROLLBACK, INFO, RELEASE)
# A module that runs other modules' steps in one process uses every option they use (options.py adds it to their
# rows), except those that choose what a step does, which it decides itself: flow_release always deploys the next
# color and routes the service to that color (flow_proxy's color and state=present).
COMPOSED = {RELEASE: ((DEPLOY, PROXY, STOP_OLD), ("color", "state"))}
SHARED_GROUPS = ("service", "docker", "consul", "release", "routes", "proxy")


@dataclass(frozen=True)
class Option:
    """One option. ``env`` and ``file_keys`` put the seed's names first."""

    name: str
    type: str  # the Ansible type: str, int, bool, path, list (of str) or raw
    group: str  # a key of GROUPS
    doc: str  # one line: what it is (module docs and the flow role's)
    modules: tuple = MODULES  # the modules that use it (the others ignore it, or do not take it: see GROUPS)
    default: object = None  # config.resolve applies it last; for options that are not resolved, the spec's default
    choices: tuple = ()
    env: tuple = ()  # environment variables it falls back to
    file_keys: tuple = ()  # docker-flow.yml keys: an option with one is resolved (parameter > env > file > default)
    aliases: tuple = ()  # legacy parameter names
    no_log: bool | None = None  # True for secrets; False for a name that only looks secret
    default_doc: str = ""  # the default in words, when it is worked out at run time
    details: tuple = ()  # more lines for the module docs
    role_details: tuple = ()  # more lines for the flow role's docs
    role_var: str | None = ""  # the flow role's variable: "" for flow_<name>, None for none
    seed: bool = False  # one of the original's options: playbooks/flow.yml maps its name (file_keys[0])
    as_written: bool = False  # FLOW_* and docker-flow.yml values stay as written (scale: '+2' stays relative)
    # A list of dicts: their keys, each {"type", "description", and "no_log" for a secret}; else a list of str.
    suboptions: dict | None = None

    @property
    def resolved(self) -> bool:
        """Whether config.resolve merges it from the parameter, FLOW_* and docker-flow.yml."""
        return bool(self.file_keys)

    @property
    def shared(self) -> bool:
        return self.group in SHARED_GROUPS

    @property
    def kind(self) -> str:
        """How config converts a FLOW_* or docker-flow.yml value: str, int, bool, list or raw."""
        if self.as_written:
            return "raw"
        return "str" if self.type == "path" else self.type

    @property
    def variable(self) -> str | None:
        """Its flow role variable, if any."""
        if self.role_var is None or self.group == "seed":
            return None
        return self.role_var or "flow_" + self.name

    def spec(self) -> dict:
        """Its entry in an Ansible argument spec: a resolved option has no default there, so that
        a parameter that is not set can be told apart from one set to the default."""
        spec: dict = {"type": self.type}
        if self.type == "list":
            spec["elements"] = "dict" if self.suboptions else "str"
        if self.suboptions:
            spec["options"] = {name: {key: value for key, value in entry.items() if key != "description"}
                               for name, entry in self.suboptions.items()}
        if self.default is not None and not self.resolved:
            spec["default"] = self.default
        if self.choices:
            spec["choices"] = list(self.choices)
        if self.aliases:
            spec["aliases"] = list(self.aliases)
        if self.no_log is not None:
            spec["no_log"] = self.no_log
        return spec
