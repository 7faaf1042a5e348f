"""Run a learner's process confined, bounded and always cleaned up.

Two paths, chosen by ``--sandbox require|auto|off`` (auto by default):

- **bubblewrap** (``bwrap``, probed by running it once): a read-only view of the filesystem, a
  private writable ``/tmp``, a writable *copy* of the learner's folder mounted at the folder's own
  path as the working directory (so ``sys.path.append(os.pardir)`` imports keep working), the
  folders of nnparity's own packages hidden, no network, its own PID namespace (killing the
  sandbox kills every process in it, ``setsid`` or not), dying with its parent;
- **scratch** (no usable ``bwrap``): the copy of the folder at a scratch path as the working
  directory, the same resource limits, this process as the child subreaper so that orphaned
  descendants can be found and killed, and a one-line warning that the run is not sandboxed.

On both paths: resource limits (address space, CPU seconds, file size) set generously, since
NumPy and OpenBLAS reserve much virtual memory; stdin carries the job and an inherited pipe the
results (never a file); stdout and stderr are drained concurrently keeping only a bounded tail;
the wall-clock timeout is ``math.inf`` for no limit; every exit path (return, timeout,
exception, SIGINT/SIGTERM turned into an exception by the caller) kills the learner and
everything it started.
"""

from __future__ import annotations

import ctypes
import functools
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

from nnparity.errors import InputError

from .child import CHANNEL_VARIABLE

MODES = ("require", "auto", "off")
TAIL_BYTES = 64 * 1024  # per stream
ADDRESS_SPACE = 16 * 2**30  # bytes, on top of the problem's own estimate
FILE_SIZE = 512 * 2**20  # largest file the learner may write (also bounds the private /tmp)
COPY_LIMIT = 256 * 2**20  # a learner's folder larger than this is not copied
TOKEN_VARIABLE = "NNPARITY_VERIFY_JOB"
SKIP_COPY = shutil.ignore_patterns("__pycache__", ".git", "*.pyc")
PR_SET_CHILD_SUBREAPER = 36
CHILD_SCRIPT = "/tmp/.nnparity/child.py"  # where the child script is mounted inside bwrap
cancel = threading.Event()  # set: every running learner is stopped (Ctrl-C while grading)


@dataclass
class Finished:
    """How the process ended: exit status (``None`` on timeout), the results channel's bytes,
    the tails of stdout/stderr, whether the channel overflowed, what was left running."""

    returncode: int | None
    channel: bytes
    stdout: bytes
    stderr: bytes
    overflow: bool = False
    left_behind: list[str] = field(default_factory=list)
    seconds: float = 0.0


@functools.cache
def bwrap_works() -> str | None:
    """``None`` when bubblewrap is installed and runs a confined command here, else why not."""
    exe = shutil.which("bwrap")
    if exe is None:
        return "bubblewrap (bwrap) is not installed"
    try:
        probe = subprocess.run([exe, "--ro-bind", "/", "/", "--proc", "/proc", "--dev", "/dev",
                                "--tmpfs", "/tmp", "--unshare-all", "--die-with-parent",
                                "--", "true"], capture_output=True, timeout=20, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"bwrap does not run here ({exc})"
    if probe.returncode != 0:
        tail = probe.stderr.decode(errors="replace").strip().splitlines()[-1:] or ["no message"]
        return f"bwrap does not run here ({tail[0]})"
    return None


def resolve_mode(mode: str) -> str:
    """``bwrap`` or ``scratch`` for ``--sandbox MODE``; ``require`` without bubblewrap is exit 2."""
    if mode not in MODES:
        raise InputError(f"--sandbox must be one of {', '.join(MODES)}, got {mode!r}")
    if mode == "off":
        return "scratch"
    why = bwrap_works()
    if why is None:
        return "bwrap"
    if mode == "require":
        raise InputError(f"--sandbox require: {why} (Debian/Ubuntu: apt-get install bubblewrap)")
    return "scratch"


def not_sandboxed_warning(mode: str) -> str:
    """The one-line warning of the scratch path."""
    why = bwrap_works() if mode == "auto" else "--sandbox off"
    return (f"warning: your code runs NOT sandboxed ({why}): it can read and write what you can; "
            "only its working folder is a scratch copy")


def _hidden_folders() -> list[Path]:
    """The folders of nnparity's packages: the child must not import the reference."""
    import nnparity
    import nnparity.backends
    import nnparity.datasets
    import nnparity.reference

    folders = {Path(m.__file__).resolve().parent for m in
               (nnparity, nnparity.reference, nnparity.backends, nnparity.datasets)
               if m.__file__}
    return sorted(folders)


def _interpreter_folders() -> list[Path]:
    """The folders the child's Python and NumPy live in, where the private ``/tmp`` would hide
    them (a virtual environment under ``/tmp``, as tox makes in a checkout there)."""
    import numpy

    candidates = {Path(sys.prefix), Path(sys.base_prefix), Path(sys.exec_prefix),
                  Path(sys.executable).parent, Path(numpy.__file__).resolve().parent.parent}
    tmp = Path("/tmp")
    return sorted(p for p in candidates
                  if tmp in p.parents or tmp in p.resolve().parents)


def _copy_folder(folder: Path, scratch: Path, keep: Path) -> Path:
    """A writable copy of ``folder`` under ``scratch`` (only the learner's file ``keep`` when
    the folder holds more than :data:`COPY_LIMIT` bytes)."""
    target = scratch / "work" / folder.name
    size = 0
    for entry in folder.rglob("*"):
        if entry.is_file() and not entry.is_symlink():
            size += entry.stat().st_size
            if size > COPY_LIMIT:
                target.mkdir(parents=True)
                shutil.copy2(keep, target / keep.name)
                return target
    shutil.copytree(folder, target, symlinks=True, ignore=SKIP_COPY)
    return target


def _bwrap_command(folder: Path, copy: Path, script: Path, python: list[str]) -> list[str]:
    cmd = ["bwrap", "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc",
           "--size", str(FILE_SIZE), "--tmpfs", "/tmp"]
    for needed in _interpreter_folders():  # read-only, like the rest of the filesystem
        cmd += ["--ro-bind", str(needed), str(needed)]
    for hidden in _hidden_folders():
        cmd += ["--tmpfs", str(hidden)]
    cmd += ["--ro-bind", str(script), CHILD_SCRIPT]
    if Path("/tmp") in folder.parent.parents:  # os.pardir imports, under the private /tmp
        cmd += ["--ro-bind", str(folder.parent), str(folder.parent)]
    cmd += ["--bind", str(copy), str(folder), "--chdir", str(folder), "--unshare-all",
            "--die-with-parent", "--new-session", "--", *python, CHILD_SCRIPT]
    return cmd


# Sets the rlimits, then becomes the command (a launcher, as preexec_fn is unsafe with threads).
LIMITER = """import ctypes, os, resource, signal, sys
space, cpu, size = map(int, sys.argv[1:4])
ctypes.CDLL(None).prctl(1, int(signal.SIGKILL), 0, 0, 0)  # PR_SET_PDEATHSIG: die with verify
resource.setrlimit(resource.RLIMIT_AS, (space, space))
resource.setrlimit(resource.RLIMIT_FSIZE, (size, size))
resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
if cpu > 0:
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 5))
os.execvp(sys.argv[4], sys.argv[4:])
"""


def _limited(cmd: list[str], address_space: int, cpu_seconds: float) -> list[str]:
    """``cmd`` run under the rlimits: address space, CPU seconds (none for an infinite
    timeout), file size, no core dumps."""
    cpu = int(cpu_seconds) + 1 if math.isfinite(cpu_seconds) else 0
    return [sys.executable, "-I", "-c", LIMITER, str(address_space), str(cpu), str(FILE_SIZE),
            *cmd]


def _become_subreaper() -> bool:
    """Orphans of the learner's processes are re-parented to this process (Linux only)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def _orphans(token: str) -> list[int]:
    """Our re-parented children that carry ``token`` in their environment (scratch path)."""
    me, found = os.getpid(), []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            if ppid == me and f"{TOKEN_VARIABLE}={token}".encode() in \
                    (entry / "environ").read_bytes().split(b"\0"):
                found.append(int(entry.name))
        except (OSError, IndexError, ValueError):
            continue
    return found


def _command_line(pid: int) -> str:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return f"pid {pid}"
    return " ".join(raw.decode(errors="replace").split("\0")).strip()[:80] or f"pid {pid}"


def _kill_orphans(token: str) -> list[str]:
    """Kill (and reap) the orphans carrying ``token``; their command lines."""
    killed = []
    for _ in range(20):  # a forking learner may race the scan: repeat until none is left
        pids = _orphans(token)
        if not pids:
            break
        for pid in pids:
            killed.append(_command_line(pid))
            for kill in (os.killpg, os.kill):
                with suppress(ProcessLookupError, PermissionError):
                    kill(pid, signal.SIGKILL)
            with suppress(ChildProcessError):
                os.waitpid(pid, 0)
    return killed


def _environment(folder: Path, token: str) -> dict[str, str]:
    """A clean environment: nothing of the caller's besides PATH, HOME and the locale."""
    keep = ("PATH", "HOME", "LANG", "LC_ALL", "TZ", "SYSTEMROOT")
    env = {k: os.environ[k] for k in keep if k in os.environ}
    env.update(PYTHONHASHSEED="0", OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1",
               MKL_NUM_THREADS="1", PYTHONDONTWRITEBYTECODE="1", PWD=str(folder),
               **{TOKEN_VARIABLE: token})
    return env


@contextmanager
def _spawned(cmd: list[str], cwd: Path, env: dict[str, str], address_space: int,
             cpu_seconds: float, results_w: int) -> Iterator[subprocess.Popen[bytes]]:
    """The process, killed with its whole process group whatever happens in the block."""
    proc = subprocess.Popen(
        _limited(cmd, address_space, cpu_seconds), cwd=cwd, env=env, stdin=subprocess.PIPE,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, pass_fds=(results_w,),
        start_new_session=True,
    )
    try:
        yield proc
    finally:
        with suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        for stream in (proc.stdin, proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()


def run_confined(path: Path, job: bytes, *, mode: str, timeout: float, channel_limit: int,
                 memory: int) -> Finished:
    """Run the child script on ``job`` (its stdin) for the learner's file ``path``.

    ``mode`` is ``bwrap`` or ``scratch`` (:func:`resolve_mode`); ``channel_limit`` bounds the
    results channel (a learner flooding it is stopped); ``memory`` is the problem's estimated
    bytes, added to the address-space limit.
    """
    token = secrets.token_hex(8)
    script = Path(__file__).with_name("child.py")
    python = [sys.executable, "-I", "-B"]
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="nnparity-verify-", ignore_cleanup_errors=True) as tmp:
        folder = path.parent
        copy = _copy_folder(folder, Path(tmp), path)
        if mode == "bwrap":
            cmd, cwd = _bwrap_command(folder, copy, script, python), copy
        else:
            _become_subreaper()
            cmd, cwd = [*python, str(script)], copy
        results_r, results_w = os.pipe()
        try:
            env = _environment(folder if mode == "bwrap" else copy, token)
            env[CHANNEL_VARIABLE] = str(results_w)
            with _spawned(cmd, cwd, env, ADDRESS_SPACE + memory, timeout, results_w) as proc:
                os.close(results_w)
                results_w = -1
                finished = _communicate(proc, job, results_r, timeout, channel_limit)
                if mode == "scratch":  # before the group is killed: name what was left
                    finished.left_behind = _kill_orphans(token) or finished.left_behind
        finally:
            os.close(results_r)
            if results_w >= 0:
                os.close(results_w)
            if mode == "scratch":
                _kill_orphans(token)
    finished.seconds = time.perf_counter() - start
    return finished


def _communicate(proc: subprocess.Popen[bytes], job: bytes, results_r: int, timeout: float,
                 channel_limit: int) -> Finished:
    """Feed ``job``, drain the three pipes (bounded) until the process exits or time runs out.

    Pipes still held open half a second after the process exited belong to processes it left
    behind: they are not waited for (the caller kills the group) but reported.
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
    exited_at = math.inf
    while len(sel.get_map()) > 0:
        if cancel.is_set():
            raise KeyboardInterrupt
        now = time.monotonic()
        if now >= deadline:
            sel.close()
            return Finished(None, bytes(channel), bytes(tails[out]), bytes(tails[err]), overflow)
        if exited_at == math.inf and proc.poll() is not None:
            exited_at = now
        if now - exited_at > 0.5:
            break
        for key, _ in sel.select(timeout=min(0.1, deadline - now)):
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
