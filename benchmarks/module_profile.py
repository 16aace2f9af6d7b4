#!/usr/bin/env python
# -*- coding: utf-8 -*-
"""Where a release's time goes: deploy, proxy, stop-old, the same in one flow_release task, and scale +2/-2.

Deploys the service and routes it, then for ``--rounds`` rounds does one release in three tasks (flow_deploy with
the other image, flow_proxy, flow_stop_old), one in one task (flow_release, a forced redeploy of that image, whose
result says how long each of its steps took) and one ``flow_scale +2`` / ``-2`` twice: once through
``ansible-playbook`` (task times, as the other benchmarks take them) and once with each module run in
a process of its own by ``profile_module.py`` (what AnsiballZ does, minus Ansible), which times the
module's imports, its Docker API calls, its ``docker exec``s into the proxy (by command), its Consul
requests (blocking queries apart) and its sleeps. The order of the two alternates between rounds. It
also times the sample app's own time-to-healthy (container start until ``/health`` answers 200) and one
``ansible.builtin.ping`` task (Ansible's fixed cost of a task).

Prints a JSON report and a summary line. Exit 1 when a step failed, 2 when it could not run.
"""

from __future__ import annotations

import os
import statistics
import sys
import time
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from common import (  # noqa: E402
    PREFIX,
    PROFILE_KINDS,
    Bench,
    BenchError,
    add_common_arguments,
    check_backend,
    emit,
    http_get,
    load_average,
    log,
    machine_info,
    main_wrapper,
    parser_for,
    profiled,
    proxy_from_args,
)

RELEASE = ("flow_deploy", "flow_proxy", "flow_stop_old")
ONE_TASK = "flow_release"  # the same release in one task
ONE_TASK_STEPS = ("deploy", "proxy", "stop_old")  # the keys of its result's timings


def arguments():
    parser = parser_for(__doc__)
    add_common_arguments(parser)
    parser.add_argument("--rounds", type=int, default=3, help="releases (and scale rounds) each way")
    parser.add_argument("--no-scale", action="store_true", help="releases only")
    args = parser.parse_args()
    check_backend(parser, args)
    return parser, args


def median(values):
    values = [value for value in values if value is not None]
    return round(statistics.median(values), 3) if values else None


def time_to_healthy(bench, image, attempts=3):
    """Seconds from creating the app's container until /health answers 200 (the median of ``attempts``)."""
    seconds = []
    for _attempt in range(attempts):
        name = "%sttl%s" % (PREFIX, uuid.uuid4().hex[:6])
        began = time.monotonic()
        container = bench.docker.containers.run(image, name=name, detach=True, ports={"8080/tcp": ("127.0.0.1", None)},
                                                labels={"dockerflow.service": name})
        try:
            container.reload()
            port = int(container.ports["8080/tcp"][0]["HostPort"])
            while time.monotonic() - began < 30:
                try:
                    status, _body = http_get("http://127.0.0.1:%d/health" % port, timeout=1)
                except OSError:  # not listening yet
                    status = None
                if status == 200:
                    seconds.append(time.monotonic() - began)
                    break
                time.sleep(0.02)
        finally:
            container.remove(force=True)
    return median(seconds)


def release_tasks(project):
    """The three-task release of the other image, then the one-task release (forced: the same image again)."""
    project.set_image(project.next_image())
    return [project.deploy(force=True), project.proxy(), project.stop_old(), project.task(ONE_TASK, force=True)]


def scale_tasks(project):
    return [project.task("flow_scale", scale="+2"), project.task("flow_scale", scale="-2")]


def one_round(project, via, with_scale):
    """One release (and scale +2/-2) through ansible-playbook or the profiler: {step: seconds or report}."""
    tasks = release_tasks(project) + (scale_tasks(project) if with_scale else [])
    names = list(RELEASE) + [ONE_TASK] + (["flow_scale +2", "flow_scale -2"] if with_scale else [])
    if via == "playbook":
        played = project.run(*tasks)
        return dict(zip(names, (step["seconds"] for step in played.steps()), strict=True))
    return {name: profiled(project, task) for name, task in zip(names, tasks, strict=True)}


def summarize(step, reports, playbook_seconds):
    """Medians over the rounds of one step's profile."""

    def pick(path):
        values = []
        for report in reports:
            value = report
            for key in path:
                value = value.get(key) if isinstance(value, dict) else None
            values.append(value)
        return median(values)

    kinds = {}
    for part in PROFILE_KINDS:
        names = sorted({kind for report in reports for kind in report[part]["by_kind"]})
        kinds[part] = {
            "count": pick((part, "count")), "seconds": pick((part, "seconds")),
            "by_kind": {name: {"count": pick((part, "by_kind", name, "count")),
                               "seconds": pick((part, "by_kind", name, "seconds"))} for name in names},
        }
    playbook = median(playbook_seconds)
    wall = pick(("wall_s",))
    return {
        "playbook_task_s": playbook,
        "profiled_wall_s": wall,
        "interpreter_s": pick(("interpreter_s",)),
        "imports_s": pick(("imports_s",)),
        "run_s": pick(("run_s",)),
        "ansible_overhead_s": round(playbook - wall, 3) if playbook is not None and wall is not None else None,
        **kinds,
        "steps_last_round": reports[-1]["result"].get("steps"),
    }


def run(parser, args):
    proxy = proxy_from_args(parser, args)
    report = {"benchmark": "module_profile", "rounds": args.rounds}
    with Bench(proxy, keep=args.keep) as bench:
        report["machine"] = machine_info(bench.docker, proxy.image)
        report["app_time_to_healthy_s"] = time_to_healthy(bench, bench.app_images[0])
        project = bench.project("mp")
        log("setting up %s: deploy, proxy on 127.0.0.1:%d" % (project.service, proxy.http_port))
        setup = project.run(("ansible.builtin.ping", {}), project.deploy(), project.proxy())
        report["ansible_ping_task_s"] = setup.step(0)["seconds"]
        status, _body = http_get(proxy.url())
        if status != 200:
            raise BenchError("the proxy does not serve %s: %s" % (project.service, status))
        played, profiles = [], []
        for index in range(args.rounds):
            for via in (("playbook", "profiled") if index % 2 == 0 else ("profiled", "playbook")):
                outcome = one_round(project, via, not args.no_scale)
                (played if via == "playbook" else profiles).append(outcome)
                log("round %d %s: %s" % (index + 1, via, ", ".join(
                    "%s %.2fs" % (step, value if via == "playbook" else value["wall_s"]) for step, value in outcome.items())))
        report["steps"] = {step: summarize(step, [p[step] for p in profiles], [p[step] for p in played])
                           for step in profiles[0]}
        report["release_playbook_s"] = median([sum(p[step] for step in RELEASE) for p in played])
        report["flow_release_playbook_s"] = median([p[ONE_TASK] for p in played])
        report["flow_release_timings_s"] = {  # as its results say, in the profiled runs
            step: median([p[ONE_TASK]["result"]["timings"].get(step) for p in profiles]) for step in ONE_TASK_STEPS}
        report["release_goal_s"] = round(report["app_time_to_healthy_s"] + 2, 3)  # issue 15: time-to-healthy + 2 s
    steps = report["steps"]
    emit(report, "module_profile: release %ss in three tasks through ansible-playbook (deploy %s, proxy %s, stop-old %s), "
                 "%ss in one flow_release task (deploy %s, proxy %s, stop_old %s); goal %ss (app time-to-healthy %ss + "
                 "2 s); scale +2 %s, -2 %s; flow_proxy: %s docker execs (%ss), %s CLI commands (%ss), sleeps %ss; load %s" % (
                     report["release_playbook_s"], *(steps[s]["playbook_task_s"] for s in RELEASE),
                     report["flow_release_playbook_s"], *report["flow_release_timings_s"].values(),
                     report["release_goal_s"], report["app_time_to_healthy_s"],
                     steps.get("flow_scale +2", {}).get("playbook_task_s"),
                     steps.get("flow_scale -2", {}).get("playbook_task_s"),
                     steps["flow_proxy"]["proxy_execs"]["count"], steps["flow_proxy"]["proxy_execs"]["seconds"],
                     steps["flow_proxy"]["proxy_cli"]["count"], steps["flow_proxy"]["proxy_cli"]["seconds"],
                     steps["flow_proxy"]["sleeps"]["seconds"], load_average()))
    return 0


def main():
    parser, args = arguments()
    return main_wrapper(lambda: run(parser, args))


if __name__ == "__main__":
    sys.exit(main())
