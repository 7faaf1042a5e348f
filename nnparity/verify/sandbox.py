"""Run a learner's process confined, bounded and always cleaned up.

``--sandbox require|auto|off`` (auto by default) picks the path, described by :class:`Sandbox`:

- **bubblewrap** (``bwrap``, probed by running it once): a read-only view of the filesystem, a
  private writable ``/tmp``, a writable *copy* of the learner's folder mounted at the folder's own
  path as the working directory (so ``sys.path.append(os.pardir)`` imports keep working; while
  a class is graded, a tmpfs of the sandbox's own filled from the run's shared copy), the
  folders of nnparity's own packages hidden, no network, its own PID namespace (killing the
  sandbox kills every process in it, ``setsid`` or not), dying with its parent;
- **the fallback** (``auto`` without a usable ``bwrap``): the layers of
  :mod:`nnparity.verify.fallback` that work on this machine (namespaces, Landlock, a reaper),
  probed once per run by running the launcher; ``off``: the reaper only.

Every run goes through :mod:`nnparity.verify.launcher` (rlimits clamped to verify's own hard
limits: address space, CPU seconds, file size, set generously since NumPy and OpenBLAS reserve
much virtual memory). stdin carries the job and an inherited pipe the results (never a file);
stdout and stderr are drained concurrently keeping only a bounded tail; the wall-clock timeout
is ``math.inf`` for no limit; every exit path (return, timeout, exception, SIGINT/SIGTERM turned
into an exception by the caller) ends the learner and everything it started.
"""

from __future__ import annotations

import ctypes
import functools
import json
import math
import os
import secrets
import selectors
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nnparity.errors import InputError

from . import fallback
from .child import CHANNEL_VARIABLE
from .confine import NAMESPACES, PF_EXITING, landlock_abi
from .grouped import end_group, run_grouped
from .interpreter import Interpreter
from .scratch import COPY_LIMIT, Scratch, SharedCopies, scratch

MODES = ("require", "auto", "off")
TAIL_BYTES = 64 * 1024  # per stream
ADDRESS_SPACE = 16 * 2**30  # bytes, on top of the problem's own estimate
FILE_SIZE = 512 * 2**20  # largest file the learner may write (also bounds the private /tmp)
TOKEN_VARIABLE = "NNPARITY_VERIFY_JOB"
PR_SET_CHILD_SUBREAPER = 36
CHILD_SCRIPT = fallback.SCRIPT_AT  # where the child script is mounted inside bwrap: not in
# /tmp, which a learner's folder may be (a file in /tmp itself would hide it)
PRISTINE_AT = "/dev/.nnparity/pristine"  # a grading run's shared copy of the folder, read-only
FOLDER_BYTES = COPY_LIMIT + FILE_SIZE  # the tmpfs a shared copy fills: the copy and the writes
GRACE_SECONDS = 5.0  # for the launcher to end what it started before it is killed
HELD_SECONDS = 0.5  # a pipe silent this long after the launcher exited is held by what it left
DRAIN_SECONDS = 5.0  # the most time spent reading the pipes after the launcher exited
SETUP_FAILED = 125  # the launcher's exit status when a layer could not be applied
PROBE = "import numpy\n"
cancel = threading.Event()  # set: every running learner is stopped (Ctrl-C while grading)


@dataclass
class Finished:
    """How the process ended: exit status (``None`` on timeout), the results channel's bytes,
    the tails of stdout/stderr, whether the channel overflowed, what was left running, notes
    (special files left out of the copy), a sandbox that could not be set up."""

    returncode: int | None
    channel: bytes
    stdout: bytes
    stderr: bytes
    overflow: bool = False
    left_behind: list[str] = field(default_factory=list)
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)
    setup_error: str | None = None


@dataclass(frozen=True)
class Sandbox:
    """How learners run: ``mode`` as asked, ``kind`` ``bwrap`` or ``fallback`` with its
    ``layers``; ``why`` bubblewrap is not used, ``missing`` why each other layer is not."""

    mode: str
    kind: str
    layers: tuple[str, ...] = ()
    why: str = ""
    missing: tuple[tuple[str, str], ...] = ()

    @property
    def confined(self) -> bool:
        """The learner's filesystem is confined (bubblewrap, namespaces or Landlock)."""
        return self.kind == "bwrap" or any(x in self.layers for x in fallback.CONFINING)

    def describe(self) -> str:
        """The layers in words, e.g. ``user, mount, PID, network, IPC, UTS namespaces;
        Landlock ABI 7; process reaper``."""
        if self.kind == "bwrap":
            return "bubblewrap"
        words = {"namespaces": f"{', '.join(NAMESPACES)} namespaces",
                 "landlock": f"Landlock ABI {landlock_abi()}",
                 "reaper": "a reaper of every process it starts"}
        return "; ".join(words[x] for x in self.layers) or "nothing"

    def warning(self) -> str | None:
        """The one line printed once per run when bubblewrap is not used."""
        if self.kind == "bwrap":
            return None
        head = f"warning: --sandbox {self.mode}: your code runs NOT sandboxed"
        if self.confined:
            return (f"{head} by bubblewrap ({self.why}); the fallback confines it with "
                    f"{self.describe()}: see docs/sandbox.md for what stays open")
        reasons = [] if self.mode == "off" else [self.why, *(why for _, why in self.missing)]
        because = f" ({'; '.join(reasons)})" if reasons else ""
        return (f"{head}{because}: it can read and write what you can; only its working folder "
                "is a scratch copy")

    def to_json(self) -> dict[str, Any]:
        return {"mode": self.mode, "kind": self.kind, "layers": list(self.layers),
                "confined": self.confined, "not_bubblewrap": self.why or None,
                "missing_layers": dict(self.missing)}


@functools.cache
def bwrap_works() -> str | None:
    """``None`` when bubblewrap is installed and runs a confined command here, else why not."""
    exe = shutil.which("bwrap")
    if exe is None:
        return "bubblewrap (bwrap) is not installed"
    try:
        probe = run_grouped([exe, "--ro-bind", "/", "/", "--proc", "/proc", "--dev", "/dev",
                             "--tmpfs", "/tmp", "--unshare-all", "--die-with-parent", "--",
                             "true"], timeout=20)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"bwrap does not run here ({exc})"
    if probe.returncode != 0:
        tail = probe.stderr.decode(errors="replace").strip().splitlines()[-1:] or ["no message"]
        return f"bwrap does not run here ({tail[0]})"
    return None


@functools.cache
def fallback_layers() -> tuple[tuple[str, ...], tuple[tuple[str, str], ...]]:
    """The fallback's layers that work here (probed by running the launcher on a script that
    imports NumPy, dropping the layer that failed until one run succeeds) and why the others
    do not."""
    layers = list(fallback.LAYERS)
    missing: list[tuple[str, str]] = []
    if landlock_abi() == 0:
        layers.remove("landlock")
        missing.append(("landlock", "the kernel offers no Landlock"))
    with tempfile.TemporaryDirectory(prefix="nnparity-probe-") as tmp:
        learner = Path(tmp, "probe", "probe.py")
        learner.parent.mkdir()
        learner.write_text(PROBE)
        while True:
            done = launch(learner, PROBE.encode(), layers=tuple(layers), timeout=60,
                          channel_limit=0, memory=0, probe=True)
            if done.returncode == 0:
                break
            failed = done.setup_error or f"the probe ended with status {done.returncode}"
            named = failed.split(":", 1)[0]
            left = [x for x in fallback.CONFINING if x in layers]
            layer = named if named in left else (left[0] if left else None)
            if layer is None:
                break
            layers.remove(layer)
            missing.append((layer, f"{layer}: {failed.removeprefix(layer + ': ')}"))
    if "namespaces" in layers:
        layers.remove("reaper")  # the namespace's init ends every process in it
    return tuple(layers), tuple(missing)


def resolve(mode: str) -> Sandbox:
    """The sandbox for ``--sandbox MODE``; ``require`` without bubblewrap is exit 2."""
    if mode not in MODES:
        raise InputError(f"--sandbox must be one of {', '.join(MODES)}, got {mode!r}")
    if mode == "off":
        return Sandbox(mode, "fallback", ("reaper",), "--sandbox off")
    why = bwrap_works()
    if why is None:
        return Sandbox(mode, "bwrap")
    if mode == "require":
        raise InputError(f"--sandbox require: {why} (Debian/Ubuntu: apt-get install bubblewrap)")
    layers, missing = fallback_layers()
    return Sandbox(mode, "fallback", layers, why, missing)


def _bwrap_command(folder: Path, copy: Path, script: Path, python: list[str],
                   workdir: Path | None = None, folders: tuple[Path, ...] | None = None,
                   shared: bool = False) -> list[str]:
    """bubblewrap's command line: ``copy`` bound at ``folder`` (the file's folder, or the root
    of its tree), run from ``workdir`` (default ``folder``); ``folders``: the interpreter's
    (default: verify's own); ``shared``: ``copy`` is a grading run's pristine copy, bound
    read-only at :data:`PRISTINE_AT`, and ``folder`` a tmpfs of :data:`FOLDER_BYTES` that the
    child script fills from it before the learner's code runs."""
    folders = fallback.interpreter_folders() if folders is None else folders
    cmd = ["bwrap", "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc",
           "--size", str(FILE_SIZE), "--tmpfs", "/tmp"]
    # The interpreter's folders (read-only, like the rest) and nnparity's hidden ones, the
    # shallower first: a deeper mount wins, so a virtual environment inside a hidden checkout
    # (tox's .tox/) stays visible, and nnparity installed inside a visible environment stays
    # hidden; at the same path, hidden wins.
    mounts = [(needed, 0, ["--ro-bind", str(needed), str(needed)]) for needed in folders]
    mounts += [(hidden, 1, ["--tmpfs", str(hidden)]) for hidden in fallback.hidden_folders()]
    for _, _, args in sorted(mounts, key=lambda m: (len(m[0].parts), m[1])):
        cmd += args
    cmd += ["--ro-bind", str(script), CHILD_SCRIPT]
    if Path("/tmp") in folder.parent.parents:  # os.pardir imports, under the private /tmp
        cmd += ["--ro-bind", str(folder.parent), str(folder.parent)]
    if shared:
        cmd += ["--ro-bind", str(copy), PRISTINE_AT, "--size", str(FOLDER_BYTES),
                "--tmpfs", str(folder)]
    else:
        cmd += ["--bind", str(copy), str(folder)]
    cmd += ["--chdir", str(workdir or folder), "--unshare-all", "--die-with-parent",
            "--new-session", "--", *python, CHILD_SCRIPT]
    return cmd + (["--fill-from", PRISTINE_AT] if shared else [])


def _become_subreaper() -> bool:
    """Orphans of the learner's processes are re-parented to this process (Linux only): the
    backstop where no PID namespace holds them and the launcher itself was killed."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def _orphans(token: str, launcher: int) -> tuple[list[int], list[int]]:
    """Our re-parented children that carry ``token`` in their environment (the ``launcher``,
    our own child, is not one): ``(running, exiting)``, the exiting ones (the kernel's
    ``PF_EXITING``: ending on their own, e.g. a sandbox's process as its PID namespace closes)
    apart, since the learner did not leave them running."""
    me, running, exiting = os.getpid(), [], []
    needle = f"{TOKEN_VARIABLE}={token}".encode()
    for name in os.listdir("/proc"):  # twice per run: plain reads, no Path objects
        if not name.isdigit() or int(name) == launcher:
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as stat:
                fields = stat.read().rsplit(b")", 1)[1].split()
            if int(fields[1]) == me:
                with open(f"/proc/{name}/environ", "rb") as environ:
                    if needle in environ.read().split(b"\0"):
                        ending = int(fields[6]) & PF_EXITING
                        (exiting if ending else running).append(int(name))
        except (OSError, IndexError, ValueError):
            continue
    return running, exiting


def _kill_orphans(token: str, launcher: int) -> list[str]:
    """Kill (and reap) the orphans carrying ``token``, the ``launcher`` spared (it is ended by
    :func:`_spawned`, which gives it time to end what it started); the PIDs of those that were
    running (the exiting ones are reaped, not named)."""
    killed = []
    for _ in range(20):  # a forking learner may race the scan: repeat until none is left
        running, exiting = _orphans(token, launcher)
        if not running and not exiting:
            break
        for pid in running + exiting:
            if pid in running:
                killed.append(f"pid {pid}")
            for kill in (os.killpg, os.kill):
                with suppress(ProcessLookupError, PermissionError):
                    kill(pid, signal.SIGKILL)
            with suppress(ChildProcessError):
                os.waitpid(pid, 0)
    return killed


def _environment(folder: Path, tmp: Path | None, token: str) -> dict[str, str]:
    """A clean environment: nothing of the caller's besides PATH, HOME and the locale."""
    keep = ("PATH", "HOME", "LANG", "LC_ALL", "TZ", "SYSTEMROOT")
    env = {k: os.environ[k] for k in keep if k in os.environ}
    env.update(PYTHONHASHSEED="0", OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1",
               MKL_NUM_THREADS="1", PYTHONDONTWRITEBYTECODE="1", PWD=str(folder),
               **{TOKEN_VARIABLE: token})
    if tmp is not None:
        env["TMPDIR"] = str(tmp)
    return env


@contextmanager
def _spawned(cmd: list[str], cwd: Path, env: dict[str, str], pass_fds: tuple[int, ...]
             ) -> Iterator[subprocess.Popen[bytes]]:
    """The launcher; whatever happens in the block, it is asked to end everything it started
    (SIGTERM), then killed with its whole process group."""
    proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, pass_fds=pass_fds,
                            start_new_session=True)
    try:
        yield proc
    finally:
        end_group(proc, GRACE_SECONDS)


def _read_report(fd: int) -> list[dict[str, Any]]:
    """The launcher's messages (JSON lines) still in its report pipe."""
    os.set_blocking(fd, False)
    data = b""
    with suppress(BlockingIOError):
        while chunk := os.read(fd, 65536):
            data += chunk
    messages = []
    for line in data.splitlines():
        with suppress(ValueError):
            messages.append(json.loads(line))
    return [m for m in messages if isinstance(m, dict)]


def run_confined(path: Path, job: bytes, *, sandbox: Sandbox, timeout: float,
                 channel_limit: int, memory: int, root: Path | None = None,
                 python: Interpreter | None = None,
                 generated: dict[str, str] | None = None,
                 copies: SharedCopies | None = None) -> Finished:
    """Run the child script on ``job`` (its stdin) for the learner's file ``path`` as
    ``sandbox`` says (:func:`resolve`); ``channel_limit`` bounds the results channel (a learner
    flooding it is stopped); ``memory`` is the problem's estimated bytes, added to the
    address-space limit; ``root``: the folder copied whole (default: the file's); ``python``:
    the interpreter running the child (default: verify's); ``generated``: files written beside
    the learner's in the copy (a notebook's script); ``copies``: a grading run's shared copies
    (used under bubblewrap, for a file's own folder with nothing generated)."""
    bwrap = sandbox.kind == "bwrap"
    return launch(path, job, layers=() if bwrap else sandbox.layers, bwrap=bwrap,
                  timeout=timeout, channel_limit=channel_limit, memory=memory, root=root,
                  python=python, generated=generated, copies=copies)


def launch(path: Path, job: bytes, *, layers: tuple[str, ...], timeout: float,
           channel_limit: int, memory: int, bwrap: bool = False, probe: bool = False,
           root: Path | None = None, python: Interpreter | None = None,
           generated: dict[str, str] | None = None,
           copies: SharedCopies | None = None) -> Finished:
    """The launcher with ``layers`` (or bubblewrap) on the scratch copy of ``root`` (default:
    ``path``'s folder), run from ``path``'s folder in it; ``probe``: run ``path`` itself as the
    script, not the child script; ``copies``: under bubblewrap, for ``path``'s own folder with
    nothing generated, the folder's shared pristine copy fills the sandbox's own tmpfs instead
    of a copy on disk per run."""
    token = secrets.token_hex(8)
    start = time.perf_counter()
    tree = root or path.parent
    workdir = path.parent.relative_to(tree)
    python = python or Interpreter(sys.executable, fallback.interpreter_folders())
    pristine = copies.pristine(path) if copies is not None and bwrap and not probe \
        and root is None and not generated else None
    with scratch(path, root, generated, pristine) as made:
        if probe:
            shutil.copyfile(path, made.script)
        in_view = bwrap or "namespaces" in layers
        command = _bwrap_command(tree, made.copy, made.script, [python.executable, "-I", "-B"],
                                 path.parent, python.folders, made.shared) if bwrap else None
        if "namespaces" not in layers:
            _become_subreaper()
        (results_r, results_w), (report_r, report_w), (config_r, config_w) = \
            os.pipe(), os.pipe(), os.pipe()
        open_fds = {results_r, results_w, report_r, report_w, config_r, config_w}
        try:
            cpu = int(timeout) + 1 if math.isfinite(timeout) else 0
            config = fallback.launcher_config(
                layers, folder=tree, copy=made.copy, tmp=made.tmp, script=made.script,
                parent=os.getpid(), report_fd=report_w, command=command,
                limits=(ADDRESS_SPACE + memory, cpu, FILE_SIZE), python=python.executable,
                folders=python.folders, workdir=str(workdir))
            open_fds.discard(config_w)
            with os.fdopen(config_w, "w") as pipe:  # a few KiB: fits the pipe's buffer
                pipe.write(json.dumps(config))
            env = _environment(path.parent if in_view else made.copy / workdir,
                               None if in_view else made.tmp, token)
            env[CHANNEL_VARIABLE] = str(results_w)
            inherited = (results_w, report_w, config_r)
            with _spawned(fallback.launcher_command(config_r), made.copy, env,
                          inherited) as proc:
                for fd in inherited:  # only the launcher holds them now
                    os.close(fd)
                    open_fds.discard(fd)
                finished = _communicate(proc, job, results_r, timeout, channel_limit)
                if "namespaces" not in layers:  # before the group is killed: name what was left
                    finished.left_behind = _kill_orphans(token, proc.pid) or \
                        finished.left_behind
            _take_report(finished, _read_report(report_r), made)
        finally:
            for fd in open_fds:
                os.close(fd)
            if "namespaces" not in layers:
                _kill_orphans(token, launcher=0)  # the launcher is gone: whatever it left
    finished.seconds = time.perf_counter() - start
    return finished


def _take_report(finished: Finished, messages: list[dict[str, Any]], made: Scratch) -> None:
    """The launcher's messages and the scratch copy's note into ``finished``."""
    for message in messages:
        if "error" in message:
            finished.setup_error = str(message["error"])
        finished.left_behind += [str(x) for x in message.get("left_behind", [])]
    note = made.note()
    if note:
        finished.notes.append(note)


def _communicate(proc: subprocess.Popen[bytes], job: bytes, results_r: int, timeout: float,
                 channel_limit: int) -> Finished:
    """Feed ``job``, drain the three pipes (bounded) until the process exits or time runs out.

    Once the process has exited, a pipe that stays silent for :data:`HELD_SECONDS` (no data, no
    end of file) is held open by a process it left behind: not waited for (the caller kills the
    group) but reported. Silence is measured by ``select`` itself, never by the time between two
    reads, which a loaded machine stretches while output is still pending.
    """
    assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
    deadline = time.monotonic() + timeout if math.isfinite(timeout) else math.inf
    out, err, stdin = proc.stdout.fileno(), proc.stderr.fileno(), proc.stdin.fileno()
    tails = {out: bytearray(), err: bytearray()}
    channel = bytearray()
    overflow = False
    pending = memoryview(job)
    sel = selectors.DefaultSelector()
    os.set_blocking(stdin, False)
    sel.register(stdin, selectors.EVENT_WRITE)
    for fd in (out, err, results_r):
        sel.register(fd, selectors.EVENT_READ)
    drain_until = math.inf  # once the process exited: what it left may write, but not forever
    while len(sel.get_map()) > 0:
        if cancel.is_set():
            raise KeyboardInterrupt
        now = time.monotonic()
        if now >= deadline:
            sel.close()
            return Finished(None, bytes(channel), bytes(tails[out]), bytes(tails[err]), overflow)
        if drain_until == math.inf and proc.poll() is not None:
            drain_until = now + DRAIN_SECONDS
        exited = drain_until < math.inf
        ready = sel.select(timeout=min(HELD_SECONDS if exited else 0.1, deadline - now))
        if exited and (not ready or now > drain_until):
            break
        for key, _ in ready:
            fd = int(key.fd)
            if fd == stdin:
                try:
                    pending = pending[os.write(fd, pending[:65536]):]
                except BlockingIOError:
                    continue
                except BrokenPipeError:
                    pending = pending[:0]
                if not pending:
                    sel.unregister(fd)
                    proc.stdin.close()
                continue
            chunk = os.read(fd, 65536)
            if not chunk:
                sel.unregister(fd)
            elif fd == results_r:
                channel += chunk
                if len(channel) > channel_limit:
                    overflow = True
                    sel.unregister(fd)
                    os.killpg(proc.pid, signal.SIGKILL)
            else:
                tails[fd] += chunk
                del tails[fd][:-TAIL_BYTES]
    held = [fd for fd in (out, err, results_r) if fd in sel.get_map()]
    sel.close()
    left = ["a process your code started still held its output"] if held else []
    return Finished(proc.wait(), bytes(channel), bytes(tails[out]), bytes(tails[err]), overflow,
                    left)
