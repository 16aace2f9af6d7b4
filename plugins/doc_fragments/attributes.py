# -*- coding: utf-8 -*-
# Copyright: Contributors to the dockerflow.flow collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment:
    # The attributes and requirements every flow module shares; a module adds its own details on top.
    # (Their options: the generated fragment options.py.)
    DOCUMENTATION = r"""
options: {}
requirements:
  - docker (the Docker SDK for Python) >= 7.0
  - py-consul >= 1.5
attributes:
  action_group:
    support: full
    membership: [dockerflow.flow.flow]
  platform:
    support: full
    platforms: posix
    details: The modules reach Docker engines and Consul over their APIs from the host that runs them.
  check_mode:
    support: full
  diff_mode:
    support: full
"""

    # For modules that only read: check mode changes nothing for them, and they have no diff.
    INFO_MODULE = r"""
options: {}
attributes:
  check_mode:
    details: The module changes nothing, so it runs the same in check mode.
  diff_mode:
    support: none
"""
