# -*- coding: utf-8 -*-
"""The POST benchmark's books: what the clients sent and were told, against what the app recorded.

The load generator gives every POST a unique id (``X-Request-Id``) and notes whether the answer
was a 2xx (acknowledged) or a failure (another status, or no answer). The recording app
(``tests/images/app-record``) appends every id it receives to ``<hostname>.ids`` in a host
directory, before it answers. ``reconcile`` compares the two:

- lost: the client was not told of a failure (it got a 2xx, or it never heard back without
  an error being reported), yet no instance recorded the id;
- duplicated: an id recorded more than once (a replay by the proxy, or by anything else);
- failed but received: the client was told the request failed, yet an instance recorded it
  (an answer lost on the way back, e.g. an instance killed after it acted). Not lost, not
  doubled, but the client cannot know the request took effect: reported apart.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Callable, Iterable

EXAMPLES = 10  # ids shown per category in a report
LEDGER_SUFFIX = ".ids"


def read_received(directory: str) -> dict[str, list[str]]:
    """{instance hostname: [ids in the order it recorded them]} from the app's ledger files."""
    received: dict[str, list[str]] = {}
    for name in sorted(os.listdir(directory)):
        if not name.endswith(LEDGER_SUFFIX):
            continue
        with open(os.path.join(directory, name), encoding="utf-8", errors="replace") as handle:
            received[name[: -len(LEDGER_SUFFIX)]] = [line.strip() for line in handle if line.strip()]
    return received


def reconcile(sent: Iterable[str], acknowledged: Iterable[str], failed: Iterable[str],
              received: dict[str, list[str]], phase_of: Callable[[str], str] | None = None) -> dict:
    """The figures of one run; ``received`` as ``read_received`` returns it.

    ``phase_of(id)`` names the step of the run an id was sent in: lost, duplicated and failed-but-received
    ids are then also counted by phase.
    """
    sent_ids = list(sent)
    sent_set = set(sent_ids)
    acknowledged_set = set(acknowledged)
    failed_set = set(failed)
    copies = Counter(request_id for ids in received.values() for request_id in ids)
    received_set = set(copies)

    not_failed = sent_set - failed_set  # acknowledged, or never heard back without an error
    lost = sorted(not_failed - received_set)
    duplicated = sorted(request_id for request_id, count in copies.items() if count > 1)
    failed_but_received = sorted(failed_set & received_set)
    unknown = sorted(received_set - sent_set)
    unanswered = sorted(sent_set - acknowledged_set - failed_set)
    figures = {
        "sent": len(sent_set),
        "sent_ids_repeated": len(sent_ids) - len(sent_set),  # the generator's own bug if not 0
        "acknowledged": len(acknowledged_set),
        "failed": len(failed_set),
        "unanswered": len(unanswered),
        "received": len(received_set),
        "received_records": sum(copies.values()),
        "received_by_instance": {instance: len(ids) for instance, ids in sorted(received.items())},
        "lost": len(lost),
        "duplicated": len(duplicated),
        "duplicate_records": sum(copies[request_id] - 1 for request_id in duplicated),
        "failed_but_received": len(failed_but_received),
        "failed_not_received": len(failed_set - received_set),
        "received_not_sent": len(unknown),
        "examples": {
            "lost": lost[:EXAMPLES],
            "duplicated": [
                {"id": request_id, "copies": copies[request_id],
                 "instances": sorted(i for i, ids in received.items() if request_id in ids)}
                for request_id in duplicated[:EXAMPLES]
            ],
            "failed_but_received": failed_but_received[:EXAMPLES],
            "received_not_sent": unknown[:EXAMPLES],
        },
    }
    if phase_of is not None:
        figures["by_phase"] = {
            name: dict(Counter(phase_of(request_id) for request_id in ids))
            for name, ids in (("lost", lost), ("duplicated", duplicated), ("failed_but_received", failed_but_received))
        }
    return figures
