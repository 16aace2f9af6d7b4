# -*- coding: utf-8 -*-
# Copyright: Contributors to the dockerflow.flow collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The words of the HAProxy configuration: ``config_word`` validates every value that reaches the file and
returns it as the file holds it (quoted where HAProxy needs it), so nothing a user types can add a directive.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from ansible_collections.dockerflow.flow.plugins.module_utils.errors import FlowError

# Consul DNS looks routed services up as _<service>._<color>.service.<domain>: one DNS label.
SERVICE_NAME_RE = re.compile(r"^[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?$")
PLAIN_NAME_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_-]{0,62}$")
# RFC 3986 path characters, minus the quote (HAProxy's quoting) and with no spaces or '#'.
PATH_RE = re.compile(r"^/[A-Za-z0-9\-._~!$&()*+,;=:@/%]*$")
DOMAIN_RE = re.compile(r"^(\*\.)?([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$")
# A Consul ACL token (its SecretID, a UUID) as the value of an HTTP header in the file.
TOKEN_RE = re.compile(r"^[A-Za-z0-9._-]{1,128}$")
ADDRESS_RE = re.compile(r"^(\*|[0-9.]+|\[[0-9a-fA-F:]+\]|[A-Za-z0-9.-]+)$")
_FORBIDDEN_IN_REGEX = ("'", "\n", "\r", "\0")
MAX_PATH_LENGTH = 1024


def _port_word(value: object, parameter: str) -> str:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 65535:
        raise FlowError("%s=%r is not valid: use a port number from 1 to 65535." % (parameter, value))
    return str(value)


def _service_word(value: str, parameter: str) -> str:
    if not SERVICE_NAME_RE.fullmatch(value):
        raise FlowError(
            "%s=%r cannot be routed: Consul DNS needs 1-63 letters, digits or '-', starting and ending "
            "with a letter or digit." % (parameter, value)
        )
    return value


def _name_word(value: str, parameter: str) -> str:
    if not PLAIN_NAME_RE.fullmatch(value):
        raise FlowError(
            "%s=%r is not valid: use 1-63 letters, digits, '_' or '-', starting with a letter, digit or '_'."
            % (parameter, value)
        )
    return value


def _color_word(value: str, parameter: str) -> str:
    if value not in ("blue", "green", "plain"):
        raise FlowError("%s=%r is not valid: use blue, green or plain." % (parameter, value))
    return value


def _path_word(value: str, parameter: str) -> str:
    if len(value) > MAX_PATH_LENGTH or not PATH_RE.fullmatch(value):
        raise FlowError(
            "%s=%r is not valid: a path starts with '/' and holds only letters, digits and "
            "-._~!$&()*+,;=:@/%% (no spaces, quotes, '#' or backslashes)." % (parameter, value)
        )
    return value


def _regex_word(value: str, parameter: str) -> str:
    if not value or len(value) > MAX_PATH_LENGTH or any(char in value for char in _FORBIDDEN_IN_REGEX):
        raise FlowError(
            "%s=%r is not valid: a regex must be non-empty, one line, without single quotes." % (parameter, value)
        )
    if not value.isprintable():  # C0/C1 controls, DEL, line separators, lone surrogates, ...
        raise FlowError("%s=%r is not valid: control characters are not allowed." % (parameter, value))
    if value.startswith("-"):  # HAProxy strips the quotes, then reads '-f', '-m', ... as ACL flags
        raise FlowError("%s=%r is not valid: a regex may not start with '-' (write '[-]' or '\\-')." % (parameter, value))
    try:
        re.compile(value)
    except re.error as exc:
        raise FlowError("%s=%r is not a valid regular expression: %s." % (parameter, value, exc))
    return "'%s'" % value  # single quotes: HAProxy takes the content literally


def _domain_word(value: str, parameter: str) -> str:
    lowered = value.lower()
    if len(lowered) > 253 or not DOMAIN_RE.fullmatch(lowered):
        raise FlowError(
            "%s=%r is not valid: use a host name like shop.example.com, optionally starting with '*.'."
            % (parameter, value)
        )
    return lowered


def _address_word(value: str, parameter: str) -> str:
    if not ADDRESS_RE.fullmatch(value):
        raise FlowError("%s=%r is not valid: use an IP address, a host name or '*'." % (parameter, value))
    return value


def _token_word(value: str, parameter: str) -> str:
    if not TOKEN_RE.fullmatch(value):  # a secret: the message does not repeat it
        raise FlowError("%s is not valid: a Consul token is 1-128 letters, digits, '.', '_' or '-' (its SecretID)."
                        % parameter)
    return value


# The text kinds of config_word: each checks one kind of value and returns it as the file holds it.
_TEXT_WORDS: dict[str, Callable[[str, str], str]] = {
    "service": _service_word,
    "name": _name_word,
    "color": _color_word,
    "path": _path_word,
    "regex": _regex_word,
    "domain": _domain_word,
    "address": _address_word,
    "token": _token_word,
}


def config_word(value: object, kind: str, parameter: str) -> str:
    """Validate ``value`` as a ``kind`` and return it as it is written into the file.

    Kinds: ``service``, ``name`` (user names, generations), ``color``, ``path``, ``regex``, ``domain``,
    ``address``, ``token``, ``port``.
    Errors name ``parameter`` and what is allowed.
    """
    if kind == "port":
        return _port_word(value, parameter)
    if not isinstance(value, str):
        raise FlowError("%s=%r is not valid: expected text." % (parameter, value))
    check = _TEXT_WORDS.get(kind)
    if check is None:
        raise ValueError("unknown kind %r" % kind)
    return check(value, parameter)
