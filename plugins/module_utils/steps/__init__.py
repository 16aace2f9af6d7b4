# -*- coding: utf-8 -*-
# Copyright: Contributors to the dockerflow.flow collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The flow steps, one file each (deploy, scale, stop_old, rollback, info), over a shared context
(context.py) and what they do to instances (instances.py). ``flow.Flow`` is what the modules call."""
