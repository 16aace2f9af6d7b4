# -*- coding: utf-8 -*-
"""In-memory stand-ins for a Docker engine and a Consul agent, for unit tests of decision logic.

The real ones are exercised by tests/integration (every flow step against the real engine
and Consul). These fakes exist so the unit tests can walk the flows' decisions (which color,
how many instances, what is kept, what a failure undoes) in milliseconds, and reach the
branches an integration test cannot provoke on demand (a CAS conflict, a lock held by a
run that was killed). They model only the calls the collection makes, with the same return
shapes as py-consul and the ``Backend`` interface.
"""

from __future__ import annotations

import base64
import itertools
import json
import uuid
from types import SimpleNamespace

from ansible_collections.dockerflow.flow.plugins.module_utils.backends.base import Backend, Instance
from ansible_collections.dockerflow.flow.plugins.module_utils.consul_client import ConsulClient
from ansible_collections.dockerflow.flow.plugins.module_utils.errors import FlowError


class _KV:
    def __init__(self, consul):
        self.consul = consul
        self.entries = {}  # key -> {"Key", "Value", "ModifyIndex", "Session"}

    def get(self, key, recurse=False, index=None, wait=None):
        self.consul.calls.append(("kv.get", key))
        if recurse:
            found = [dict(entry) for name, entry in sorted(self.entries.items()) if name.startswith(key)]
            return self.consul.index, found or None
        entry = self.entries.get(key)
        return self.consul.index, dict(entry) if entry else None

    def put(self, key, value, cas=None, acquire=None, release=None):
        self.consul.calls.append(("kv.put", key))
        hook = self.consul.before_put.pop(0) if self.consul.before_put else None
        if hook:
            hook(self)
        entry = self.entries.get(key)
        if cas is not None and (entry["ModifyIndex"] if entry else 0) != cas:
            return False
        if acquire is not None:
            if acquire not in self.consul.sessions:
                return False
            if entry and entry.get("Session") and entry["Session"] != acquire:
                return False
        if release is not None and (not entry or entry.get("Session") != release):
            return False
        session = acquire if acquire is not None else (None if release is not None else (entry or {}).get("Session"))
        self.write(key, value, session=session)
        return True

    def write(self, key, value, session=None):
        data = value.encode() if isinstance(value, str) else value
        self.entries[key] = {"Key": key, "Value": data, "ModifyIndex": self.consul.bump(), "Session": session}

    def delete(self, key):
        self.entries.pop(key, None)
        return True


class _Http:
    """The one raw request the collection makes: ``PUT /v1/txn`` with the ``check-session`` and ``cas`` verbs,
    all or nothing, answered 200 or 409 with Consul's ``Errors`` as the real agent does."""

    def __init__(self, consul):
        self.consul = consul

    def put(self, callback, path, params=None, data="", headers=None):
        assert path == "/v1/txn", path
        operations = [operation["KV"] for operation in json.loads(data)]
        self.consul.calls.append(("txn", tuple(operation["Key"] for operation in operations)))
        hook = self.consul.before_put.pop(0) if self.consul.before_put else None
        if hook:
            hook(self.consul.kv)
        entries = self.consul.kv.entries
        errors = []
        for position, operation in enumerate(operations):
            entry = entries.get(operation["Key"])
            if operation["Verb"] == "check-session":
                if not entry or entry.get("Session") != operation["Session"]:
                    errors.append({"OpIndex": position, "What": "failed session check for key %r" % operation["Key"]})
            elif operation["Verb"] == "cas":
                if (entry["ModifyIndex"] if entry else 0) != operation["Index"]:
                    errors.append({"OpIndex": position, "What": "failed to set key %r, index is stale" % operation["Key"]})
            else:
                raise NotImplementedError(operation["Verb"])
        if not errors:
            for operation in operations:
                if operation["Verb"] == "cas":
                    session = (entries.get(operation["Key"]) or {}).get("Session")
                    self.consul.kv.write(operation["Key"], base64.b64decode(operation["Value"]), session=session)
        return callback(SimpleNamespace(code=409 if errors else 200, headers={},
                                        body=json.dumps({"Errors": errors or None})))


class _Session:
    def __init__(self, consul):
        self.consul = consul

    def create(self, name=None, behavior=None, ttl=None, lock_delay=None):
        session = str(uuid.uuid4())
        self.consul.sessions[session] = {"name": name, "ttl": ttl}
        return session

    def renew(self, session):
        return session in self.consul.sessions

    def destroy(self, session):
        """Like Consul's release behaviour: the session's locks go, their values stay."""
        self.consul.sessions.pop(session, None)
        for entry in self.consul.kv.entries.values():
            if entry.get("Session") == session:
                entry["Session"] = None
                entry["ModifyIndex"] = self.consul.bump()
        return True


class _AgentService:
    def __init__(self, consul):
        self.consul = consul

    def register(self, name, service_id=None, address=None, port=None, tags=None, meta=None, check=None):
        self.consul.services[service_id] = {
            "ID": service_id, "Service": name, "Address": address, "Port": port, "Tags": list(tags or []),
            "Meta": dict(meta or {}), "Check": check,
            "Status": (check or {}).get("Status") or "critical",
        }
        self.consul.calls.append(("register", service_id))
        return True

    def deregister(self, service_id):
        self.consul.services.pop(service_id, None)
        self.consul.calls.append(("deregister", service_id))
        return True


class _Agent:
    def __init__(self, consul):
        self.consul = consul
        self.service = _AgentService(consul)

    def services(self):
        return {sid: dict(entry) for sid, entry in self.consul.services.items()}


class _Health:
    def __init__(self, consul):
        self.consul = consul

    def service(self, name, tag=None, passing=None, index=None, wait=None):  # answers at once: no blocking query
        found = []
        for entry in self.consul.services.values():
            if entry["Service"] != name or (tag and tag not in entry["Tags"]):
                continue
            if passing and entry["Status"] != "passing":
                continue
            found.append({"Service": {"ID": entry["ID"], "Tags": entry["Tags"]},
                          "Checks": [{"ServiceID": entry["ID"], "Status": entry["Status"]}]})
        return self.consul.index, found


class _Status:
    def __init__(self, consul):
        self.consul = consul

    def leader(self):
        return self.consul.leader


class FakeConsulAPI:
    """The parts of ``consul.Consul`` the collection calls: KV with CAS and session locks,
    sessions, agent services and health."""

    def __init__(self):
        self.index = 1
        self.calls = []
        self.sessions = {}
        self.services = {}
        self.leader = "127.0.0.1:8300"
        self.before_put = []  # callables run before a kv.put, one per put: a concurrent writer
        self.kv = _KV(self)
        self.http = _Http(self)
        self.session = _Session(self)
        self.agent = _Agent(self)
        self.health = _Health(self)
        self.status = _Status(self)

    def bump(self):
        self.index += 1
        return self.index

    def prepare_headers(self, token=None):
        return {}

    def document(self, service):
        entry = self.kv.entries.get("dockerflow/services/%s" % service)
        return json.loads(entry["Value"]) if entry else None


class FakeConsulClient(ConsulClient):
    """``ConsulClient`` (its error translation included) over a FakeConsulAPI."""

    def __init__(self, api=None):  # pylint: disable=super-init-not-called
        self.address = "http://consul.test:8500"
        self.api = api or FakeConsulAPI()


class FakeBackend(Backend):
    """Instances as records: what run, clone, start, stop and remove did is visible to the test.

    Images whose name contains ``unhealthy`` yield instances Docker reports unhealthy. Builds are records too:
    ``images`` (name -> build digest) is what the engine has, ``built`` and ``pushed`` what it did, and a build
    fails as the classic builder does when ``fail_build`` is set.
    """

    def __init__(self):
        self.instances = {}  # id -> Instance
        self.removed, self.stopped, self.side_targets, self.pulled = [], [], [], []
        self.images, self.built, self.pushed, self.fail_build = {}, [], [], False
        self.events = []  # what changed, in order: ("build", name), ("push", name), ("side", name), ("run", image)
        self._ids = itertools.count(1)
        self._ports = itertools.count(32768)
        self.fail_remove = False

    # -- reading ---------------------------------------------------------------------
    def list_instances(self, service):
        found = [i for i in self.instances.values() if i.service == service]
        return sorted(found, key=lambda i: (i.color, i.release, i.number))

    def refresh(self, instance):
        return self.instances.get(instance.id, instance)

    def resolve_image(self, image, pull_policy, check_mode=False, refresh_after_s=None):
        will_pull = pull_policy == "always"
        if will_pull and not check_mode:
            self.pulled.append(image)
        return "sha256:" + image.replace("/", "-"), will_pull

    def image_has_healthcheck(self, image):
        return True

    def built_digest(self, name):
        return self.images.get(name)

    def build_image(self, build, name, digest, progress):
        progress("building %s: Step 1/2 : FROM base" % name)
        progress("building %s: Step 2/2 : RUN make" % name)
        if self.fail_build:
            raise FlowError("Building image %s failed at Step 2/2 : RUN make: the command returned a non-zero code: 2. "
                            "Its last lines: make: *** No rule to make target 'all'." % name,
                            logs=["Step 2/2 : RUN make", "make: *** No rule to make target 'all'."])
        self.images[name] = digest
        self.built.append(name)
        self.events.append(("build", name))
        return "sha256:" + digest[:12]

    def push_image(self, name, progress):
        self.pushed.append(name)
        self.events.append(("push", name))
        progress("pushed %s (sha256:feed)" % name)

    def logs(self, instance, tail=20):
        return "starting\n%s gave up" % instance.name

    def health_log(self, instance):
        return "GET /health: 500"

    # -- changing ----------------------------------------------------------------------
    def _new(self, service, color, release, number, image, config_hash, ports):
        ident = "%064d" % next(self._ids)
        instance = Instance(
            id=ident, name="%s-%s-%d" % (service, color, number), service=service, color=color, release=release,
            number=number, status="running", health="unhealthy" if "unhealthy" in image else "healthy", image=image,
            config_hash=config_hash, created="2024-01-01T00:00:%02dZ" % (int(ident) % 60),
            ports={key: next(self._ports) for key in ports},
        )
        self.instances[ident] = instance
        return instance

    def run_instances(self, spec, context, color, release, numbers, config_hash, compose_project=None, image_id=None):
        self.events.append(("run", spec.image))
        return [self._new(context.service, color, release, number, spec.image, config_hash, [p.key for p in spec.ports])
                for number in numbers]

    def clone_instances(self, template, numbers):
        return [self._new(template.service, template.color, template.release, number, template.image,
                          template.config_hash, list(template.ports)) for number in numbers]

    def start(self, instances):
        for instance in instances:
            self.instances[instance.id].status = "running"
        return [self.instances[i.id] for i in instances]

    def stop(self, instances, timeout=None):
        for instance in instances:
            self.instances[instance.id].status = "exited"
            self.stopped.append(instance.name)

    def remove(self, instances):
        if self.fail_remove:
            raise FlowError("the engine refused to remove %s" % ", ".join(i.name for i in instances))
        for instance in instances:
            self.instances.pop(instance.id, None)
            self.removed.append(instance.name)

    def ensure_side_target(self, spec, compose_project, project, pull, publish_address, check_mode=False):
        self.side_targets.append(spec.name)
        self.events.append(("side", spec.image))
        if pull:
            self.pulled.append(spec.image)
        return "created"

    def side_target_instance(self, spec, project):
        return Instance(id="side-" + spec.name, name="%s-%s-1" % (project, spec.name), service="", color="plain",
                        release=0, number=1, status="running", health="healthy", image=spec.image, config_hash="",
                        created="")
