"""The supervisor between verify and a learner's process: ``python -I launcher.py FD``, run by
path (standard library only; it loads :mod:`nnparity.verify.confine` from its own folder).

It reads its configuration from the pipe ``FD`` (JSON built by :mod:`nnparity.verify.fallback`,
kept off the command line, which the learner could read): the rlimits, the layers to apply
(``namespaces``, ``landlock``, ``reaper``), the paths of the view, the command and the number of
an inherited *report* pipe. The launcher dies with verify (``PR_SET_PDEATHSIG``), lowers the
rlimits (never above the hard limits it inherited), then:

- with ``namespaces``: unshares, forks the new PID namespace's init, which builds the view,
  forks the learner and reaps every orphan until the learner exits; when the init exits, the
  kernel kills everything left in the namespace, whatever session it moved to;
- without: becomes the child subreaper and, once the learner exits (or on SIGTERM), kills every
  process descended from it, orphans re-parented to it included.

The learner drops its capabilities and, with ``landlock``, restricts itself before ``exec``.
A layer that cannot be applied ends the run (exit 125) with ``{"error", "layer"}`` on the
report pipe, which also carries ``{"left_behind": [...]}`` (what the reaper killed). The
learner's exit status is passed on as the launcher's own (a signal is raised again).
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import resource
import select
import signal
import sys
import time
from pathlib import Path
from typing import Any

PR_SET_PDEATHSIG, PR_SET_CHILD_SUBREAPER = 1, 36
SETUP_FAILED = 125
MAX_NAMED = 20  # processes named in a left_behind report
REAP_ROUNDS = 50  # a forking learner may race a scan: repeat until nothing is left

_spec = importlib.util.spec_from_file_location("_nnparity_confine",
                                               Path(__file__).with_name("confine.py"))
assert _spec is not None and _spec.loader is not None
confine = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(confine)
libc = confine.libc


class SetupError(Exception):
    """A layer that was asked for cannot be applied."""

    def __init__(self, layer: str, exc: OSError) -> None:
        super().__init__(f"{layer}: {exc.strerror or exc}")
        self.layer = layer


def die_with(parent: int, sig: int, alive: int | None = None) -> None:
    """``sig`` when ``parent`` dies; exit now if it already has (seen from a new PID namespace,
    where the parent's PID is 0: when the pipe ``alive`` it holds the other end of is closed)."""
    libc.prctl(PR_SET_PDEATHSIG, int(sig), 0, 0, 0)
    if alive is not None and select.select([alive], [], [], 0)[0]:
        os._exit(SETUP_FAILED)
    if alive is None and os.getppid() != parent:
        os._exit(SETUP_FAILED)


def lower_limits(space: int, cpu: int, size: int) -> None:
    """Address space, CPU seconds (0: none), file size, no core dumps: each clamped to the hard
    limit this process inherited (raising one is not allowed)."""
    wanted = [(resource.RLIMIT_AS, space, space), (resource.RLIMIT_FSIZE, size, size),
              (resource.RLIMIT_CORE, 0, 0)]
    if cpu > 0:
        wanted.append((resource.RLIMIT_CPU, cpu, cpu + 5))
    for which, soft, hard in wanted:
        _, inherited = resource.getrlimit(which)
        if inherited != resource.RLIM_INFINITY:
            soft, hard = min(soft, inherited), min(hard, inherited)
        resource.setrlimit(which, (soft, hard))


def send(report: int, **message: Any) -> None:
    with contextlib.suppress(OSError):
        os.write(report, (json.dumps(message) + "\n").encode())


def exec_learner(config: dict[str, Any], in_namespaces: bool) -> None:
    """In the forked learner: drop privileges, Landlock, ``exec`` the child script."""
    layers = config["layers"]
    folder = Path(config["folder"] if in_namespaces else config["copy"])
    tmp = Path("/tmp" if in_namespaces else config["tmp"])
    script = config["script_at"] if in_namespaces else config["script"]
    command = config["command"] or [*config["python"], script]
    os.chdir(folder / config["workdir"])  # the file's folder inside its copied tree
    if "namespaces" in layers or "landlock" in layers:
        try:
            confine.drop_privileges()
        except OSError as exc:
            raise SetupError("privileges", exc) from None
    if "landlock" in layers:
        trees = [Path(p) for p in config["read"]]
        trees.append(Path(script))
        trees += [Path("/proc")] if in_namespaces else []
        rules = confine.readable_rules(trees, [Path(p) for p in config["holes"]])
        devices = [Path("/dev", d) for d in confine.DEVICES]
        try:
            confine.restrict(confine.landlock_abi(), rules, [folder, tmp], devices)
        except OSError as exc:
            raise SetupError("landlock", exc) from None
    os.execvp(command[0], command)


def descendants(root: int) -> list[int]:
    """Every live process below ``root``: not a zombie (reaped, not listed) and not already
    exiting (the kernel's ``PF_EXITING``: a process that ended, or that the end of its PID
    namespace is killing, has no command line left and is no process the learner left running;
    its children are still searched)."""
    children: dict[int, list[int]] = {}
    exiting: set[int] = set()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
            except (OSError, IndexError):
                continue
            if stat[0] != "Z":
                children.setdefault(int(stat[1]), []).append(int(entry))
                if int(stat[6]) & confine.PF_EXITING:
                    exiting.add(int(entry))
    found, todo = [], list(children.get(root, []))
    while todo:
        pid = todo.pop()
        if pid not in exiting:
            found.append(pid)
        todo += children.get(pid, [])
    return found


def command_line(pid: int) -> str:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return f"pid {pid}"
    return " ".join(raw.decode(errors="replace").split("\0")).strip()[:80] or f"pid {pid}"


def reap() -> None:
    with contextlib.suppress(ChildProcessError):
        while os.waitpid(-1, os.WNOHANG)[0] > 0:
            pass


def end_descendants() -> list[str]:
    """Kill (and reap) every process below this one; their command lines."""
    killed: list[str] = []
    for _ in range(REAP_ROUNDS):
        pids = descendants(os.getpid())
        if not pids:
            break
        for pid in pids:
            killed.append(command_line(pid))
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.01)
        reap()
    return killed


def init(config: dict[str, Any], status_w: int) -> None:
    """PID 1 of the new namespaces: build the view, run the learner, reap until it exits,
    send its wait status on ``status_w`` (the kernel then kills what is left)."""
    try:
        confine.build_view(Path(config["folder"]), Path(config["copy"]),
                           Path(config["script"]), Path(config["script_at"]),
                           [Path(p) for p in config["hide"]], [Path(p) for p in config["keep"]],
                           config["tmp_bytes"])
    except OSError as exc:
        raise SetupError("namespaces", exc) from None
    learner = os.fork()
    if learner == 0:
        run_learner(config, in_namespaces=True)
    while True:
        pid, status = os.wait()
        if pid == learner:
            os.write(status_w, status.to_bytes(4, "little"))
            os._exit(0)


def run_learner(config: dict[str, Any], in_namespaces: bool) -> None:
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    try:
        exec_learner(config, in_namespaces)
    except SetupError as exc:
        send(config["report_fd"], error=str(exc), layer=exc.layer)
    except OSError as exc:
        send(config["report_fd"], error=f"cannot run the child script: {exc}", layer="exec")
    os._exit(SETUP_FAILED)


def supervise(config: dict[str, Any], child: int, status_r: int | None) -> int:
    """Wait for ``child`` (the learner, or the namespaces' init); then end everything below;
    return the learner's wait status."""

    _, status = os.waitpid(child, 0)
    if status_r is not None:  # the init's report of the learner's status (none: setup failed)
        raw = os.read(status_r, 4)
        status = int.from_bytes(raw, "little") if len(raw) == 4 else SETUP_FAILED << 8
    left = learners_left(end_descendants(), config["command"])
    if left:
        send(config["report_fd"], left_behind=left[:MAX_NAMED])
    return status


def learners_left(killed: list[str], command: list[str] | None) -> list[str]:
    """The command lines of ``killed`` that the learner left, not bubblewrap's own second
    process (the init of the sandbox's PID namespace, a fork of ``command`` with its command
    line), which may still be ending when the first has returned: the learner's processes
    inside that namespace end with it, and the child script names them from inside."""
    own = " ".join(command)[:80] if command else None
    return [line for line in killed if line != own]


def terminate(signum: int, frame: object) -> None:
    """SIGTERM (verify ending the run, or dying): kill everything below, exit."""
    end_descendants()
    os._exit(128 + signum)


def main() -> int:
    given = int(sys.argv[1])
    with os.fdopen(given, "rb") as pipe:
        config = json.loads(pipe.read())
    os.set_inheritable(config["report_fd"], False)
    die_with(config["parent"], signal.SIGTERM)
    lower_limits(config["address_space"], config["cpu_seconds"], config["file_size"])
    namespaces = "namespaces" in config["layers"]
    status_r = status_w = alive = None
    try:
        if namespaces:
            try:
                confine.enter_namespaces()
            except OSError as exc:
                raise SetupError("namespaces", exc) from None
            die_with(config["parent"], signal.SIGTERM)  # the credentials changed: set again
            status_r, status_w = os.pipe()
            alive, held = os.pipe()
        else:
            libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    except SetupError as exc:
        send(config["report_fd"], error=str(exc), layer=exc.layer)
        return SETUP_FAILED
    launcher = os.getpid()
    signal.signal(signal.SIGTERM, terminate)
    child = os.fork()
    if child == 0:
        if status_w is None:
            die_with(launcher, signal.SIGKILL)
            run_learner(config, in_namespaces=False)
        os.close(held)
        die_with(launcher, signal.SIGKILL, alive)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        try:
            init(config, status_w)
        except SetupError as exc:
            send(config["report_fd"], error=str(exc), layer=exc.layer)
        os._exit(SETUP_FAILED)
    if status_w is not None:
        os.close(status_w)
        os.close(alive)
    status = supervise(config, child, status_r)
    if os.WIFSIGNALED(status):
        signal.signal(os.WTERMSIG(status), signal.SIG_DFL)
        os.kill(os.getpid(), os.WTERMSIG(status))
    return os.waitstatus_to_exitcode(status) if os.WIFEXITED(status) else SETUP_FAILED


if __name__ == "__main__":
    sys.exit(main())
