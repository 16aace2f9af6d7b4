# -*- coding: utf-8 -*-
# Copyright: Contributors to the dockerflow.flow collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the parts of proxy_node.ProxyNode (proxy_servers, proxy_configuration) use of it: the container's files,
commands and CLIs, which ProxyNode provides."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ansible_collections.dockerflow.flow.plugins.module_utils.haproxy_config import ProxySettings


class ProxyPart:
    """A part of ProxyNode: these are ProxyNode's."""

    settings: ProxySettings
    admin_host: str

    def status(self) -> str | None:  # pragma: no cover - ProxyNode's
        raise NotImplementedError

    def read_file(self, path: str) -> str | None:  # pragma: no cover - ProxyNode's
        raise NotImplementedError

    def put_files(self, files: dict[str, str], mode: int | None = None) -> None:  # pragma: no cover - ProxyNode's
        raise NotImplementedError

    def exec(self, command: list[str]) -> tuple[int, str]:  # pragma: no cover - ProxyNode's
        raise NotImplementedError

    def logs(self, tail: int = 20) -> str:  # pragma: no cover - ProxyNode's
        raise NotImplementedError

    def pause(self, seconds: float) -> None:  # pragma: no cover - ProxyNode's
        raise NotImplementedError

    def runtime(self, command: str) -> str:  # pragma: no cover - ProxyNode's
        raise NotImplementedError

    def master(self, command: str) -> str:  # pragma: no cover - ProxyNode's
        raise NotImplementedError

    def newest_worker(self, command: str) -> str:  # pragma: no cover - ProxyNode's
        raise NotImplementedError
