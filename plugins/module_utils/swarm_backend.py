# -*- coding: utf-8 -*-
# Copyright: Contributors to the dockerflow.flow collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Run service instances as Swarm services, through a manager's API.

A release of color ``C`` is the replicated service ``<service>-C`` (``<service>-r<release>``
without blue-green); its tasks are the instances, numbered by their slot. What the flows do to
instances becomes service-level work:

- start instances: raise the replicas; stop them: lower the replicas and remember how many
  stopped in the service label ``dockerflow.stopped-replicas``, so a service scaled to 0
  still lists that many stopped instances and a rollback scales it back;
- remove instances: lower the replicas (or the stopped count); the service goes with its last
  instance; retire (scale-down): lower the replicas and report the tasks Swarm picked;
- discard (a failed step): put each service back the way the step found it.

How the proxy reaches the tasks (docs/swarm.md): every task publishes its ports in ``host``
mode on an ephemeral port of its node (two replicas on one node do not clash, and no routing
mesh or virtual IP is needed: ``endpoint_mode`` defaults to ``dnsrr``), and the registrator of
that node registers it in the node's Consul agent with the node's address, from the labels
set here (``dockerflow.register-port``, ``dockerflow.check-http``). A task that moves to
another node is registered where it lands; a dead node's tasks go critical with its agent.
The flow only waits until Consul lists every new task passing; the proxy is unchanged.
"""

from __future__ import annotations

import copy
import time
import types

from ansible_collections.dockerflow.flow.plugins.module_utils import colors
from ansible_collections.dockerflow.flow.plugins.module_utils.docker_backend import (
    ContainerBackend,
    EngineBackend,
    Instance,
)
from ansible_collections.dockerflow.flow.plugins.module_utils.errors import FlowError
from ansible_collections.dockerflow.flow.plugins.module_utils.labels import (
    LABEL_CHECK_HTTP,
    LABEL_COLOR,
    LABEL_COMPOSE_SERVICE,
    LABEL_CONFIG_HASH,
    LABEL_LEGACY_NAMES,
    LABEL_PROJECT,
    LABEL_REGISTER_PORT,
    LABEL_RELEASE,
    LABEL_SERVICE,
    LABEL_SIDE_TARGET,
)
from ansible_collections.dockerflow.flow.plugins.module_utils.options import OPTIONS

try:
    import docker.errors
    import requests.exceptions

    HAS_DOCKER = True
except ImportError:  # pragma: no cover - reported by docker_backend.connect
    HAS_DOCKER = False

BACKENDS = OPTIONS["backend"].choices  # auto, container, swarm
LABEL_STOPPED = "dockerflow.stopped-replicas"
LABEL_DOCKER_HEALTH = "dockerflow.docker-health"  # "true": the tasks have a Docker HEALTHCHECK
DEFAULT_ENDPOINT_MODE = "dnsrr"
TASK_WAIT_SECONDS = 60  # for the orchestrator to create, or to shut down, the tasks of one change
POLL_SECONDS = 0.3
SERVICE_NAME_MAX = 63
# Swarm task states as the container states the flows know.
_TASK_STATUS = {
    "new": "created", "allocated": "created", "pending": "created", "assigned": "created", "accepted": "created",
    "preparing": "created", "ready": "created", "starting": "created", "running": "running",
    "complete": "exited", "shutdown": "exited", "failed": "exited", "rejected": "exited", "remove": "exited",
    "orphaned": "dead",
}
_ACTIVE_STATES = ("new", "allocated", "pending", "assigned", "accepted", "preparing", "ready", "starting", "running")
# Compose's container restart policy, for a service whose deploy section has none.
_RESTART_CONDITIONS = {"no": "none", "on-failure": "on-failure", "always": "any", "unless-stopped": "any"}
_STOPPED_MARK = "/stopped/"


# -- choosing the backend ----------------------------------------------------------------------


def swarm_role(client):
    """``manager``, ``worker`` or ``none``: what the engine is in Swarm mode."""
    try:
        swarm = client.info().get("Swarm") or {}
    except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
        raise FlowError("Cannot ask the Docker engine whether it is a Swarm manager: %s." % exc)
    if swarm.get("LocalNodeState") != "active":
        return "none"
    return "manager" if swarm.get("ControlAvailable") else "worker"


def select_backend(client, choice, where):
    """The backend ``choice`` (auto | container | swarm) names, for the engine ``client`` reaches at ``where``."""
    if choice not in BACKENDS:
        raise FlowError("backend=%r is not valid: use one of %s." % (choice, ", ".join(BACKENDS)))
    if choice == "container":
        return ContainerBackend(client)
    role = swarm_role(client)
    if role == "manager":
        return SwarmBackend(client)
    if choice == "swarm":
        state = "a Swarm worker" if role == "worker" else "not in Swarm mode"
        raise FlowError(
            "backend=swarm needs a Swarm manager, and the engine at %s (docker_host) is %s: point docker_host at "
            "a manager, or use backend=container." % (where, state)
        )
    return ContainerBackend(client)


# -- Compose service -> Swarm service spec (pure) ------------------------------------------------


def service_name(service, color, release):
    """The Swarm service of one release: ``<service>-<color>``, or ``<service>-r<release>`` for plain ones."""
    name = "%s-r%d" % (service, release) if color == colors.PLAIN else "%s-%s" % (service, color)
    if len(name) > SERVICE_NAME_MAX:
        raise FlowError(
            "service_name=%r is too long for Swarm: %s has %d characters, at most %d are allowed; set a shorter "
            "service_name." % (service, name, len(name), SERVICE_NAME_MAX)
        )
    return name


def _healthcheck(healthcheck):
    if not healthcheck:
        return None
    keys = {"test": "Test", "interval": "Interval", "timeout": "Timeout", "retries": "Retries",
            "start_period": "StartPeriod"}
    return {keys[key]: value for key, value in healthcheck.items() if key in keys and value is not None}


def _hosts(extra_hosts):
    """Compose's ``host:ip`` (or ``host=ip``) as the ``ip host`` lines of a Swarm container spec."""
    lines = []
    for item in extra_hosts:
        separator = "=" if "=" in item else ":"
        host, _separator, address = item.partition(separator)
        lines.append("%s %s" % (address.strip("[]"), host))
    return lines


def _mounts(spec, project, compose_project):
    mounts = []
    for mount in spec.mounts:
        entry = {"Type": mount.kind, "Target": mount.target, "ReadOnly": mount.read_only}
        if mount.kind == "bind":
            entry["Source"] = mount.source
        elif mount.kind == "volume" and mount.source:
            # Node-local volumes: each node creates its own on first use, with these options.
            declared = compose_project.volumes[mount.source] if compose_project else {}
            entry["Source"] = declared.get("name") or "%s_%s" % (project, mount.source)
            options = {"Labels": dict(declared.get("labels") or {}, **{LABEL_PROJECT: project})}
            if declared.get("driver"):
                options["DriverConfig"] = {"Name": declared["driver"], "Options": declared.get("driver_opts") or {}}
            entry["VolumeOptions"] = options
        mounts.append(entry)
    for item in spec.tmpfs:
        mounts.append({"Type": "tmpfs", "Target": str(item).split(":", 1)[0]})
    return mounts


def _endpoint(spec, where):
    ports = []
    for port in spec.ports:
        if port.mode == "ingress":
            raise FlowError(
                "%s: port %s has mode ingress, which backend swarm does not use: instances are reached on host-mode "
                "ports of their nodes, registered in Consul. Remove the mode (or set mode: host)." % (where, port.key)
            )
        if port.host_ip:
            raise FlowError(
                "%s: port %s names host_ip %s, which Swarm cannot bind: a task publishes on every address of its "
                "node. Remove host_ip." % (where, port.key, port.host_ip)
            )
        entry = {"Protocol": port.protocol, "TargetPort": port.container_port, "PublishMode": "host"}
        if port.host_port:
            entry["PublishedPort"] = port.host_port
        ports.append(entry)
    return {"Mode": spec.deploy.endpoint_mode or DEFAULT_ENDPOINT_MODE, "Ports": ports}


def _restart_policy(spec):
    if spec.deploy.restart_policy is not None:
        return dict(spec.deploy.restart_policy)
    if spec.restart:
        policy, _colon, retries = spec.restart.partition(":")
        result = {"Condition": _RESTART_CONDITIONS[policy]}
        if retries:
            result["MaxAttempts"] = int(retries)
        return result
    return None


def build_service_spec(spec, name, image, replicas, labels, container_labels, environment, networks, aliases,
                       project, compose_project=None):
    """The Swarm service spec (Engine API form) of Compose service ``spec``.

    ``networks`` maps the Compose network keys ``spec`` joins to their Swarm network names;
    ``aliases`` are added to the Compose aliases on every network.
    """
    where = "service %s" % spec.name
    deploy = spec.deploy
    container = {
        "Image": image,
        "Labels": container_labels,
        "Env": ["%s=%s" % item for item in sorted(environment.items())],
    }
    optional = {
        "Command": spec.entrypoint,
        "Args": spec.command,
        "Hostname": spec.hostname,
        "Dir": spec.working_dir,
        "User": spec.user,
        "StopSignal": spec.stop_signal,
        "StopGracePeriod": spec.stop_grace_period * 10**9 if spec.stop_grace_period is not None else None,
        "Healthcheck": _healthcheck(spec.healthcheck),
        "Hosts": _hosts(spec.extra_hosts) or None,
        "ReadOnly": spec.read_only or None,
        "Init": spec.init,
        "CapabilityAdd": spec.cap_add or None,
        "CapabilityDrop": spec.cap_drop or None,
        "Mounts": _mounts(spec, project, compose_project) or None,
    }
    container.update({key: value for key, value in optional.items() if value is not None})
    task = {
        "ContainerSpec": container,
        "Networks": [
            {"Target": networks[key], "Aliases": list(aliases) + list(options["aliases"])}
            for key, options in spec.networks.items()
        ],
    }
    resources = {kind: values for kind, values in (("Limits", deploy.limits), ("Reservations", deploy.reservations)) if values}
    if resources:
        task["Resources"] = resources
    restart = _restart_policy(spec)
    if restart:
        task["RestartPolicy"] = restart
    placement = {}
    if deploy.constraints:
        placement["Constraints"] = list(deploy.constraints)
    if deploy.spread:
        placement["Preferences"] = [{"Spread": {"SpreadDescriptor": descriptor}} for descriptor in deploy.spread]
    if deploy.max_replicas_per_node:
        placement["MaxReplicas"] = deploy.max_replicas_per_node
    if placement:
        task["Placement"] = placement
    if spec.logging:
        task["LogDriver"] = {"Name": spec.logging.get("driver") or "json-file", "Options": spec.logging.get("options") or {}}
    result = {
        "Name": name,
        "Labels": dict(deploy.labels, **labels),
        "TaskTemplate": task,
        "Mode": {"Replicated": {"Replicas": replicas}},
        "EndpointSpec": _endpoint(spec, where),
    }
    if deploy.update_config is not None:
        result["UpdateConfig"] = dict(deploy.update_config)
    if deploy.rollback_config is not None:
        result["RollbackConfig"] = dict(deploy.rollback_config)
    return result


def with_replicas(spec, replicas, stopped):
    """A copy of service spec ``spec`` with ``replicas`` running and ``stopped`` remembered as stopped."""
    changed = copy.deepcopy(spec)
    changed["Mode"] = {"Replicated": {"Replicas": replicas}}
    labels = dict(changed.get("Labels") or {})
    labels.pop(LABEL_STOPPED, None)
    if stopped:
        labels[LABEL_STOPPED] = str(stopped)
    changed["Labels"] = labels
    return changed


def replicas_of(spec):
    return int(((spec.get("Mode") or {}).get("Replicated") or {}).get("Replicas") or 0)


def stopped_of(spec):
    try:
        return int((spec.get("Labels") or {}).get(LABEL_STOPPED) or 0)
    except ValueError:
        return 0


def task_instance(task, service_spec, node_address):
    """The Instance of Swarm task ``task`` of the service whose spec is ``service_spec``."""
    container = ((task.get("Spec") or {}).get("ContainerSpec")) or {}
    labels = container.get("Labels") or {}
    status = task.get("Status") or {}
    state = status.get("State") or "new"
    error = status.get("Err") or None
    ports = {}
    for port in (status.get("PortStatus") or {}).get("Ports") or []:
        if port.get("PublishedPort"):
            ports["%d/%s" % (port["TargetPort"], port.get("Protocol") or "tcp")] = int(port["PublishedPort"])
    health = None
    if (service_spec.get("Labels") or {}).get(LABEL_DOCKER_HEALTH) == "true":
        # Swarm reports a task with a HEALTHCHECK running only once it is healthy, and stops it when it is
        # unhealthy: an app that exits 0 on SIGTERM then ends as "complete", with no error to say why.
        if state == "running":
            health = "healthy"
        elif (error and "unhealthy" in error) or (not error and _TASK_STATUS.get(state) in ("exited", "dead")):
            health = "unhealthy"
            error = error or "it ended before its Docker HEALTHCHECK passed (Swarm stops a task whose check fails)"
        else:
            health = "starting"
    try:
        release = int(labels.get(LABEL_RELEASE) or 0)
    except ValueError:
        release = 0
    return Instance(
        id=task["ID"],
        name="%s.%d.%s" % (service_spec.get("Name"), task.get("Slot") or 0, task["ID"]),
        service=labels.get(LABEL_SERVICE, ""),
        color=labels.get(LABEL_COLOR, ""),
        release=release,
        number=int(task.get("Slot") or 0),
        status=_TASK_STATUS.get(state, "created"),
        health=health,
        image=container.get("Image", ""),
        config_hash=labels.get(LABEL_CONFIG_HASH, ""),
        created=task.get("CreatedAt", ""),
        ports=ports,
        exit_code=(status.get("ContainerStatus") or {}).get("ExitCode"),
        address=node_address,
        error=error if _TASK_STATUS.get(state) != "running" else None,
    )


def stopped_instances(service_id, service_spec, updated_at=""):
    """The stopped instances a service scaled to 0 remembers (``dockerflow.stopped-replicas``)."""
    labels = service_spec.get("Labels") or {}
    container = (service_spec.get("TaskTemplate") or {}).get("ContainerSpec") or {}
    try:
        release = int(labels.get(LABEL_RELEASE) or 0)
    except ValueError:
        release = 0
    return [
        Instance(
            id="%s%s%d" % (service_id, _STOPPED_MARK, number),
            name="%s.%d" % (service_spec.get("Name"), number),
            service=labels.get(LABEL_SERVICE, ""),
            color=labels.get(LABEL_COLOR, ""),
            release=release,
            number=number,
            status="exited",
            health=None,
            image=container.get("Image", ""),
            config_hash=labels.get(LABEL_CONFIG_HASH, ""),
            created=updated_at,
        )
        for number in range(1, stopped_of(service_spec) + 1)
    ]


def is_stopped_instance(instance):
    return _STOPPED_MARK in instance.id


def pinned_image(image, repo_digests):
    """``image`` pinned to the digest the manager resolved, so every node runs the same bytes."""
    repository = image.split("@", 1)[0]
    last = repository.rsplit("/", 1)[-1]
    if ":" in last:
        repository = repository[: -(len(last) - last.index(":"))]
    for digest in repo_digests or []:
        name, _at, value = digest.partition("@")
        if name == repository and value:
            return "%s@%s" % (image.split("@", 1)[0], value)
    return image


# -- the backend -----------------------------------------------------------------------------------


class SwarmBackend(EngineBackend):
    """Instances are the tasks of Swarm services; every call goes to one manager."""

    registration_owner = "registrator"
    NETWORK_DRIVER = "overlay"
    NETWORK_OPTIONS = types.MappingProxyType({"attachable": True, "scope": "swarm"})  # containers may join (the proxy)

    def __init__(self, client):
        super().__init__(client)
        self._nodes = {}
        self._undo = {}  # service ID -> its spec before this run changed it (None: this run created it)

    # -- networks --------------------------------------------------------------------------
    def _check_network(self, network, key):
        if network.get("Scope") != "swarm":
            raise FlowError(
                "Network %s (networks.%s) is a %s network of one engine; Swarm services need a swarm-scoped "
                "(overlay) network: remove it, or name another one." % (network["Name"], key, network.get("Scope"))
            )

    def ensure_networks(self, project, compose_project, spec):
        for key in spec.networks:
            declared = (compose_project.networks if compose_project else {}).get(key) or {}
            if declared.get("driver") not in (None, "overlay") and not declared.get("external"):
                raise FlowError(
                    "networks.%s has driver %s; Swarm services need overlay networks: remove the driver or set "
                    "driver: overlay." % (key, declared["driver"])
                )
        return super().ensure_networks(project, compose_project, spec)

    # -- reading ------------------------------------------------------------------------------
    def _node_address(self, node_id):
        if not node_id:
            return None
        if node_id not in self._nodes:
            for node in self._call("listing the Swarm nodes", self.api.nodes):
                address = (node.get("Status") or {}).get("Addr")
                if not address or address == "0.0.0.0":
                    address = ((node.get("ManagerStatus") or {}).get("Addr") or "").rpartition(":")[0] or None
                self._nodes[node["ID"]] = address
        return self._nodes.get(node_id)

    def _services(self, filters):
        return self._call("listing Swarm services", self.api.services, filters=filters)

    def _service(self, service_id):
        return self._call("inspecting Swarm service %s" % service_id, self.api.inspect_service, service_id)

    def _service_named(self, name):
        return next((s for s in self._services({"name": name}) if s["Spec"]["Name"] == name), None)

    def _tasks(self, service_id, current=True):
        tasks = self._call("listing the tasks of %s" % service_id, self.api.tasks, filters={"service": service_id})
        tasks = [t for t in tasks if t.get("ServiceID") == service_id]
        if current:
            tasks = [t for t in tasks if t.get("DesiredState") in ("running", "ready")]
        return tasks

    def _task_instances(self, service, tasks):
        return [task_instance(task, service["Spec"], self._node_address(task.get("NodeID"))) for task in tasks]

    def list_instances(self, service):
        instances = []
        for entry in self._services({"label": "%s=%s" % (LABEL_SERVICE, service)}):
            instances.extend(self._task_instances(entry, self._tasks(entry["ID"])))
            instances.extend(stopped_instances(entry["ID"], entry["Spec"], entry.get("UpdatedAt", "")))
        return sorted(instances, key=lambda i: (i.color, i.number))

    def refresh(self, instance):
        if is_stopped_instance(instance):
            return instance
        task = self._call("inspecting task %s" % instance.name, self.api.inspect_task, instance.id)
        service = self._service(task["ServiceID"])
        return task_instance(task, service["Spec"], self._node_address(task.get("NodeID")))

    def _service_of(self, instance):
        if is_stopped_instance(instance):
            return instance.id.split(_STOPPED_MARK, 1)[0]
        task = self._call("inspecting task %s" % instance.name, self.api.inspect_task, instance.id)
        return task["ServiceID"]

    def _by_service(self, instances):
        """service ID -> (running task instances, stopped instances) among ``instances``."""
        groups = {}
        for instance in instances:
            running, stopped = groups.setdefault(self._service_of(instance), ([], []))
            (stopped if is_stopped_instance(instance) else running).append(instance)
        return groups

    # -- images ----------------------------------------------------------------------------------
    def _pinned(self, image):
        try:
            data = self.api.inspect_image(image)
        except docker.errors.DockerException:
            return image
        return pinned_image(image, data.get("RepoDigests"))

    def _has_docker_health(self, spec):
        test = (spec.healthcheck or {}).get("test")
        if test:
            return test[0] != "NONE"
        try:  # no test of its own (none, or only new timings): the image's
            return self.image_has_healthcheck(spec.image)
        except FlowError:
            return False

    # -- changing services -------------------------------------------------------------------------
    def _put(self, service_id, spec, what):
        current = self._service(service_id)
        self._call(
            what,
            self.api.update_service,
            service_id,
            current["Version"]["Index"],
            task_template=spec["TaskTemplate"],
            name=spec["Name"],
            labels=spec.get("Labels") or {},
            mode=spec.get("Mode"),
            update_config=spec.get("UpdateConfig"),
            rollback_config=spec.get("RollbackConfig"),
            endpoint_spec=spec.get("EndpointSpec"),
        )

    def _create(self, spec):
        """Create the service ``spec`` describes; returns its ID."""
        created = self._call(
            "creating Swarm service %s" % spec["Name"],
            self.api.create_service,
            spec["TaskTemplate"],
            name=spec["Name"],
            labels=spec["Labels"],
            mode=spec["Mode"],
            update_config=spec.get("UpdateConfig"),
            rollback_config=spec.get("RollbackConfig"),
            endpoint_spec=spec["EndpointSpec"],
        )
        return created["ID"]

    def _remember(self, service_id, spec):
        self._undo.setdefault(service_id, copy.deepcopy(spec))

    def _scale(self, service_id, running_delta, stopped_delta, remember=False):
        """Change the replicas and the stopped count of a service; returns (spec before, spec after)."""
        service = self._service(service_id)
        before = service["Spec"]
        if remember:
            self._remember(service_id, before)
        replicas = max(0, replicas_of(before) + running_delta)
        stopped = max(0, stopped_of(before) + stopped_delta)
        after = with_replicas(before, replicas, stopped)
        self._put(service_id, after, "scaling %s to %d" % (before["Name"], replicas))
        return before, after

    def _wait_tasks(self, service_id, done, what, timeout=TASK_WAIT_SECONDS):
        """Poll the service's current tasks until ``done(tasks)``; returns them."""
        deadline = time.monotonic() + timeout
        while True:
            tasks = self._tasks(service_id)
            if done(tasks):
                return tasks
            if time.monotonic() >= deadline:
                raise FlowError("Swarm did not %s within %ds." % (what, timeout))
            time.sleep(POLL_SECONDS)

    def _new_tasks(self, service_id, known_ids, count, name):
        tasks = self._wait_tasks(
            service_id, lambda tasks: len([t for t in tasks if t["ID"] not in known_ids]) >= count,
            "create %d task(s) of %s" % (count, name),
        )
        return [t for t in tasks if t["ID"] not in known_ids]

    def _wait_shut_down(self, service_id, timeout):
        """Until no task the service no longer wants still runs; returns those still stopping at the timeout."""
        deadline = time.monotonic() + timeout
        while True:
            every = self._tasks(service_id, current=False)
            leaving = [t for t in every if t.get("DesiredState") not in ("running", "ready")
                       and (t.get("Status") or {}).get("State") in _ACTIVE_STATES]
            if not leaving or time.monotonic() >= deadline:
                return leaving
            time.sleep(POLL_SECONDS)

    # -- the Backend interface -------------------------------------------------------------------
    def run_instances(self, spec, context, color, release, numbers, config_hash, compose_project=None, image_id=None):
        name = service_name(context.service, color, release)
        networks = self.ensure_networks(context.project, compose_project, spec)
        compose_service = context.target if color == colors.PLAIN else "%s-%s" % (context.target, color)
        release_labels = {
            LABEL_SERVICE: context.service,
            LABEL_COLOR: color,
            LABEL_RELEASE: str(release),
            LABEL_CONFIG_HASH: config_hash,
            LABEL_PROJECT: context.project,
            LABEL_COMPOSE_SERVICE: compose_service,
        }
        container_labels = dict(spec.labels, **release_labels)
        if context.register_port:
            container_labels[LABEL_REGISTER_PORT] = context.register_port
            if context.check_http_path:
                container_labels[LABEL_CHECK_HTTP] = context.check_http_path
            if context.legacy_names:
                container_labels[LABEL_LEGACY_NAMES] = "true"
        service_labels = dict(release_labels, **{LABEL_DOCKER_HEALTH: str(self._has_docker_health(spec)).lower()})
        environment = dict(spec.environment)
        environment.update({"DOCKERFLOW_SERVICE": context.service, "DOCKERFLOW_COLOR": color,
                            "DOCKERFLOW_RELEASE": str(release)})
        wanted = build_service_spec(
            spec, name, self._pinned(spec.image), len(numbers), service_labels, container_labels, environment,
            networks, [context.target, compose_service], context.project, compose_project,
        )
        existing = self._service_named(name)
        if existing is None:
            service_id = self._create(wanted)
            self._undo.setdefault(service_id, None)
            known = set()
        else:
            service_id = existing["ID"]
            if (existing["Spec"].get("Labels") or {}).get(LABEL_SERVICE) != context.service:
                raise FlowError("A Swarm service named %s already exists and does not belong to service %s."
                                % (name, context.service))
            self._remember(service_id, existing["Spec"])
            known = {t["ID"] for t in self._tasks(service_id, current=False)}
            if replicas_of(existing["Spec"]):
                # An older release of this (non-live) color still runs: stop it first, so the new spec starts
                # its tasks at once instead of rolling them one by one.
                self._put(service_id, with_replicas(existing["Spec"], 0, 0), "stopping the older release in %s" % name)
            self._put(service_id, wanted, "updating Swarm service %s to release %d" % (name, release))
        service = self._service(service_id)
        return self._task_instances(service, self._new_tasks(service_id, known, len(numbers), name))

    def clone_instances(self, template, numbers):
        service_id = self._service_of(template)
        known = {t["ID"] for t in self._tasks(service_id, current=False)}
        _before, after = self._scale(service_id, len(numbers), 0, remember=True)
        service = self._service(service_id)
        return self._task_instances(service, self._new_tasks(service_id, known, len(numbers), after["Name"]))

    def start(self, instances):
        started = []
        for service_id, (running, stopped) in self._by_service(instances).items():
            if running:
                started.extend(self.refresh(instance) for instance in running)
            if not stopped:
                continue
            known = {t["ID"] for t in self._tasks(service_id, current=False)}
            _before, after = self._scale(service_id, len(stopped), -len(stopped), remember=True)
            service = self._service(service_id)
            started.extend(self._task_instances(service, self._new_tasks(service_id, known, len(stopped), after["Name"])))
        return started

    def stop(self, instances, timeout=None):
        """Scale down by the running instances given, remembering them as stopped.

        Swarm stops tasks with the service's stop_grace_period (``timeout`` does not apply).
        """
        for service_id, (running, _stopped) in self._by_service(instances).items():
            if running:
                self._scale(service_id, -len(running), len(running))
                self._wait_shut_down(service_id, TASK_WAIT_SECONDS)

    def remove(self, instances):
        for service_id, (running, stopped) in self._by_service(instances).items():
            try:
                service = self._service(service_id)
            except FlowError:
                continue  # already gone
            release = (service["Spec"].get("Labels") or {}).get(LABEL_RELEASE)
            # Instances of a release this service no longer runs (deploy replaced it in place) are gone already.
            running = [i for i in running if str(i.release) == release]
            stopped = [i for i in stopped if str(i.release) == release]
            if not (running or stopped):
                continue
            replicas = max(0, replicas_of(service["Spec"]) - len(running))
            remaining_stopped = max(0, stopped_of(service["Spec"]) - len(stopped))
            if replicas == 0 and remaining_stopped == 0:
                self._remove_service(service_id, service["Spec"]["Name"])
            else:
                self._put(service_id, with_replicas(service["Spec"], replicas, remaining_stopped),
                          "scaling %s to %d" % (service["Spec"]["Name"], replicas))

    def _remove_service(self, service_id, name):
        try:
            self.api.remove_service(service_id)
        except docker.errors.NotFound:
            pass
        except docker.errors.APIError as exc:
            raise FlowError("Removing Swarm service %s failed: %s." % (name, exc.explanation or exc))

    def retire(self, instances, timeout=None):
        """Scale down by len(instances): Swarm picks the tasks; returns the ones that went."""
        gone = []
        for service_id, (running, _stopped) in self._by_service(instances).items():
            if not running:
                continue
            service = self._service(service_id)
            before = {t["ID"]: t for t in self._tasks(service_id)}
            _before, after = self._scale(service_id, -len(running), 0)
            wanted = replicas_of(after)
            staying = self._wait_tasks(
                service_id, lambda tasks, wanted=wanted: len(tasks) <= wanted,
                "pick %d task(s) of %s to stop" % (len(running), after["Name"]),
            )
            picked = [task for task_id, task in before.items() if task_id not in {t["ID"] for t in staying}]
            self._wait_shut_down(service_id, TASK_WAIT_SECONDS)
            gone.extend(self._task_instances(service, picked))
        return gone

    def discard(self, instances):
        """Put every service this run changed back as it found it (``instances`` are all theirs)."""
        if not self._undo:
            self.remove(instances)
            return
        errors = []
        for service_id in list(self._undo):
            previous = self._undo.pop(service_id)
            try:
                if previous is None:
                    self._remove_service(service_id, service_id)
                else:
                    self._put(service_id, previous, "putting Swarm service %s back" % previous["Name"])
                    # Their registrators deregister the discarded tasks as they stop: done before returning.
                    self._wait_shut_down(service_id, TASK_WAIT_SECONDS)
            except FlowError as error:
                errors.append(error.msg)
        if errors:
            raise FlowError(" ".join(errors))

    def logs(self, instance, tail=20):
        if is_stopped_instance(instance):
            return ""
        try:
            url = self.api._url("/tasks/{0}/logs", instance.id)
            response = self.api._get(url, params={"stdout": 1, "stderr": 1, "tail": tail}, stream=False)
            self.api._raise_for_status(response)
            raw = b"".join(self.api._multiplexed_buffer_helper(response))
        except (docker.errors.DockerException, AttributeError, OSError):
            return ""
        return raw.decode("utf-8", "replace").strip()

    def health_log(self, instance):
        return instance.error or ""

    # -- side targets ----------------------------------------------------------------------------
    def _side_target_name(self, spec, project):
        return spec.container_name or "%s-%s" % (project, spec.name)

    def _find_side_target(self, name):
        return self._service_named(name)

    def _side_target_runs(self, found):
        return replicas_of(found["Spec"]) > 0

    def _start_side_target(self, found, spec, name):
        self._put(found["ID"], with_replicas(found["Spec"], spec.deploy.replicas or 1, 0),
                  "starting side target %s" % name)

    def _create_side_target(self, spec, compose_project, project, name, publish_address):
        networks = self.ensure_networks(project, compose_project, spec)
        labels = {LABEL_PROJECT: project, LABEL_COMPOSE_SERVICE: spec.name, LABEL_SIDE_TARGET: "true"}
        wanted = build_service_spec(
            spec, name, self._pinned(spec.image), spec.deploy.replicas or 1,
            dict(labels, **{LABEL_DOCKER_HEALTH: str(self._has_docker_health(spec)).lower()}),
            dict(spec.labels, **labels), dict(spec.environment), networks, [spec.name], project, compose_project,
        )
        self._create(wanted)

    def side_target_instance(self, spec, project):
        name = self._side_target_name(spec, project)
        service = self._service_named(name)
        if service is None:
            raise FlowError("Side target %s has no Swarm service %s." % (spec.name, name))
        tasks = self._wait_tasks(service["ID"], bool, "create a task of side target %s" % name)
        return self._task_instances(service, tasks[:1])[0]
