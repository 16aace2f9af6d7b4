# -*- coding: utf-8 -*-
"""HAProxy helpers shared by the unit and integration tests of the rendered configuration:
a line splitter that reads words the way HAProxy's parser does, and hypothesis strategies for
valid routes (their values overlap on purpose, so random routes compete for the same requests)."""

from __future__ import annotations

import re

from hypothesis import strategies as st

from ansible_collections.dockerflow.flow.plugins.module_utils.haproxy_config import PATH_TYPES, Route
from ansible_collections.dockerflow.flow.plugins.module_utils.proxy_canary import Canary


def haproxy_words(line):
    """Split one configuration line into words like HAProxy's parse_line does.

    Whitespace separates words, '#' outside quotes starts a comment, a backslash
    outside single quotes escapes the next character, single quotes keep their
    content literally, double quotes group (environment variables not expanded here).
    """
    words, word, quote, index = [], None, None, 0
    while index < len(line):
        char = line[index]
        if quote == "'":
            if char == "'":
                quote = None
            else:
                word += char
        elif char == "\\":
            assert index + 1 < len(line), "dangling backslash in %r" % line
            word = (word or "") + line[index + 1]
            index += 1
        elif quote == '"':
            if char == '"':
                quote = None
            else:
                word += char
        elif char in "'\"":
            quote, word = char, word or ""
        elif char == "#":
            break
        elif char in " \t":
            if word is not None:
                words.append(word)
                word = None
        else:
            word = (word or "") + char
        index += 1
    assert quote is None, "unterminated quote in %r" % line
    if word is not None:
        words.append(word)
    return words


ALNUM = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
PATH_CHARS = ALNUM + "-._~!$&()*+,;=:@/%"
LABEL = st.from_regex(r"[a-z0-9]([a-z0-9-]{0,10}[a-z0-9])?", fullmatch=True)
REGEX_TOKENS = [
    "api", "/", r"v[0-9]+", r"\d+", r"\w*", r"\.json", "(a|b)", "[a-z]{2,4}", ".*", "$", " ", "#", '"',
    r"\\", r"\$", "[#;]", r"\s", "%", "(?:x|y)", r"\-",
]
# Overlapping values, so random routes often compete for the same requests.
COMMON_PATHS = ["/", "/a", "/a/b", "/a/b/c", "/ab"]
COMMON_DOMAINS = ["example.com", "shop.example.com", "Shop.Example.com", "a.shop.example.com", "*.example.com",
                  "*.shop.example.com", "*.com"]

services = st.one_of(  # one DNS label: letters, digits and '-' inside
    st.sampled_from(ALNUM),
    st.builds(lambda first, middle, last: first + middle + last,
              st.sampled_from(ALNUM), st.text(alphabet=ALNUM + "-", max_size=61), st.sampled_from(ALNUM)),
)
paths = st.one_of(st.sampled_from(COMMON_PATHS), st.text(alphabet=PATH_CHARS, max_size=30).map(lambda rest: "/" + rest))
domains = st.one_of(
    st.sampled_from(COMMON_DOMAINS[:3]),
    st.sampled_from(COMMON_DOMAINS),
    st.builds(
        lambda wildcard, labels, upper: ("*." if wildcard else "") + (".".join(labels).upper() if upper else ".".join(labels)),
        st.booleans(),
        st.lists(LABEL, min_size=1, max_size=4),
        st.booleans(),
    ),
)
regexes = st.builds(
    lambda anchor, tokens, literal: anchor + "".join(tokens) + re.escape(literal),
    st.sampled_from(["^/", "/", "^", ""]),
    st.lists(st.sampled_from(REGEX_TOKENS), min_size=1, max_size=6),
    st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126, blacklist_characters="'"), max_size=8),
).filter(lambda value: not value.startswith("-"))


@st.composite
def valid_routes(draw, service=services, canaries=False):
    path_type = draw(st.sampled_from(PATH_TYPES))
    path_values = draw(st.lists(regexes if path_type == "regex" else paths, max_size=3))
    domain = draw(st.one_of(st.none(), domains)) if path_values else draw(domains)
    return Route(
        service=draw(service),
        color=draw(st.sampled_from(["blue", "green", "plain"])),
        paths=tuple(path_values),
        path_type=path_type,
        domain=domain,
        colors=tuple(draw(st.lists(st.sampled_from(["blue", "green"]), max_size=2))),
        health_path=draw(st.one_of(st.none(), paths)),
        canary=draw(st.one_of(st.none(), st.builds(Canary, color=st.sampled_from(["blue", "green"]),
                                                   weight=st.integers(0, 100)))) if canaries else None,
    )
