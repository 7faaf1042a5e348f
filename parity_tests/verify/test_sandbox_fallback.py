"""The fallback sandbox (no bubblewrap): each layer keeps a learner away from verify's /proc
entries, the project's source and the original folder, and ends every process it started,
whatever session that moved to, on every way verify ends.

Each test forces the layers it measures (bubblewrap is set aside) and skips where this machine
lacks them (the probe's reason). The attacks come from issue 20.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path

import pytest
from learner_header import HEADER  # parity_tests/verify/, beside this file

import nnparity.reference
from nnparity.cli import main
from nnparity.verify import sandbox

CONFINING = {"namespaces": ("namespaces",), "landlock": ("landlock", "reaper")}
ALL = {**CONFINING, "reaper": ("reaper",)}

# Runs verify with the fallback's layers forced: python -c DRIVER LAYERS ARGS...
DRIVER = """import sys
from nnparity.verify import sandbox
layers = tuple(sys.argv[1].split(","))
sandbox.bwrap_works = lambda: "bubblewrap set aside by the test"
sandbox.fallback_layers = lambda: (layers, ())
from nnparity.cli import main
sys.exit(main(sys.argv[2:]))
"""


def needs(layers: tuple[str, ...]) -> None:
    """Skip unless this machine's probe found every layer of ``layers``."""
    works, missing = sandbox.fallback_layers()
    lacking = [x for x in layers if x not in works and x != "reaper"]
    if lacking:
        why = dict(missing).get(lacking[0], f"{lacking[0]} does not work here")
        pytest.skip(why)


@pytest.fixture
def forced(monkeypatch, request) -> tuple[str, ...]:
    """The layers named by the test's parameter, forced for in-process runs."""
    layers = ALL[request.param]
    needs(layers)
    monkeypatch.setattr(sandbox, "bwrap_works", lambda: "bubblewrap set aside by the test")
    monkeypatch.setattr(sandbox, "fallback_layers", lambda: (layers, ()))
    return layers


def learner(folder: Path, body: str, name: str = "learner.py") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(HEADER + textwrap.dedent(body))
    return path


def verify(path: Path, capsys, *extra: str) -> tuple[int, str, str]:
    code = main(["verify", str(path), "--backends", "none", *extra])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def driver(layers: tuple[str, ...], *args: str) -> list[str]:
    return [sys.executable, "-c", DRIVER, ",".join(layers), "verify", *args]


@pytest.mark.parametrize("name", sorted(CONFINING))
def test_verify_environment_and_command_line_stay_out_of_reach(tmp_path, name):
    layers = CONFINING[name]
    needs(layers)
    secret = f"secret-{uuid.uuid4().hex}"
    marker = f"class-{uuid.uuid4().hex}"
    path = learner(tmp_path / marker, f"""
        seen = []
        try:
            pids = [p for p in os.listdir("/proc") if p.isdigit()]
        except OSError:
            pids = []
        for pid in {{str(os.getppid()), *pids}} - {{str(os.getpid())}}:  # its own: its env
            for part in ("environ", "cmdline"):
                try:
                    with open(f"/proc/{{pid}}/{{part}}", "rb") as f:
                        seen.append(f.read().decode(errors="replace"))
                except OSError:
                    pass
        found = [s for s in seen if "NNP_TEST_SECRET" in s or {marker!r} in s]
        if found:
            raise RuntimeError("read from /proc: " + found[0][:400])
        """)
    report = tmp_path / "report.json"
    env = {**os.environ, "NNP_TEST_SECRET": secret}
    done = subprocess.run(driver(layers, str(path), "--backends", "none", "--json", str(report)),
                          capture_output=True, text=True, env=env, timeout=120, check=False)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert secret not in done.stdout + done.stderr + report.read_text()
    assert json.loads(report.read_text())["command"]["sandbox"]["layers"] == list(layers)


@pytest.mark.parametrize("forced", sorted(CONFINING), indirect=True)
def test_the_project_source_cannot_be_read_or_imported(tmp_path, capsys, forced):
    package = Path(nnparity.reference.__file__).resolve().parent
    path = learner(tmp_path / "reader", f"""
        import importlib
        reached = []
        try:
            with open({str(package / "mlp.py")!r}) as f:
                reached.append(f.read(40))
        except OSError:
            pass
        sys.path.insert(0, {str(package.parent)!r})
        try:
            importlib.import_module({package.name + ".mlp"!r})
            reached.append("imported")
        except ImportError:
            pass
        assert not reached, f"the reference was reached: {{reached}}"
        """)
    code, out, _ = verify(path, capsys)
    assert code == 0, out


@pytest.mark.parametrize("forced", sorted(CONFINING), indirect=True)
def test_the_original_folder_cannot_be_changed(tmp_path, capsys, forced):
    folder = tmp_path / "class"
    folder.mkdir()
    (folder / "keep.txt").write_text("keep")
    path = learner(folder, f"""
        for attempt in (lambda: os.remove({str(folder / "keep.txt")!r}),
                        lambda: open({str(folder / "new.txt")!r}, "w").close()):
            try:
                attempt()
            except OSError:
                pass
        """)
    code, out, _ = verify(path, capsys)
    assert code == 0, out
    assert (folder / "keep.txt").read_text() == "keep"
    assert not (folder / "new.txt").exists()


@pytest.mark.parametrize("forced", sorted(CONFINING), indirect=True)
def test_the_learner_holds_no_privilege_and_no_network(tmp_path, capsys, forced):
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        path = learner(tmp_path / "priv", f"""
            import socket
            held = []
            try:
                status = open("/proc/self/status").read().splitlines()
                held += [s for s in status if s.startswith("CapEff") and s.split()[1].strip("0")]
            except OSError:
                pass  # no /proc at all under Landlock alone
            try:
                socket.create_connection(("127.0.0.1", {port}), timeout=2).close()
                held.append("the network")
            except OSError:
                pass
            for cmd in (["unshare", "--user", "--map-root-user", "true"],
                        ["unshare", "--mount", "true"]):
                try:
                    if subprocess.run(cmd, capture_output=True).returncode == 0:
                        held.append(" ".join(cmd))
                except OSError:
                    pass
            assert not held, f"the learner holds {{held}}"
            """)
        code, out, _ = verify(path, capsys)
    assert code == 0, out


def _as_from_a_terminal() -> None:
    """SIGINT at its default in the verify process, as under a terminal's Ctrl-C (a test run in
    the background of a shell without job control inherits it ignored)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _running(marker: str) -> list[int]:
    """Processes whose command line holds ``marker``."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            try:
                if marker.encode() in (entry / "cmdline").read_bytes():
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def _kill(pids: list[int]) -> None:
    for pid in pids:
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)


ENDINGS = {"finished": None, "SIGTERM": signal.SIGTERM, "SIGINT": signal.SIGINT,
           "SIGKILL": signal.SIGKILL}
EXPECTED = {"finished": 0, "SIGTERM": 128 + signal.SIGTERM, "SIGINT": 128 + signal.SIGINT,
            "SIGKILL": -signal.SIGKILL}


SPAWNER = """
    def forward(x, W1, b1, W2, b2):
        subprocess.Popen(["/bin/sh", "-c", "setsid sleep {marker} &"], env={{}})
        subprocess.Popen([sys.executable, "-c", "import time; time.sleep(9000)", "{marker}"],
                         start_new_session=True)
        while {hang}:
            time.sleep(0.05)
        z1 = x @ W1 + b1
        return [z1, np.tanh(z1) @ W2 + b2]
    """


def _end_and_check(cmd: list[str], marker: str, ending: str, started: int) -> None:
    """Run ``cmd`` (verify), wait for ``started`` marked processes (or more: a shell that has not
    exited yet), end verify by ``ending``; nothing marked may be left running."""
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            preexec_fn=_as_from_a_terminal)
    try:
        if ending != "finished":
            deadline = time.monotonic() + 60
            while len(_running(marker)) < started and time.monotonic() < deadline:
                time.sleep(0.1)
            assert len(_running(marker)) >= started, "the learner's grandchildren never started"
            proc.send_signal(ENDINGS[ending])
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == EXPECTED[ending], out[-2000:] + err[-2000:]
        deadline = time.monotonic() + 10  # after kill -9, the launcher ends them on its own
        while _running(marker) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert _running(marker) == [], f"left running after verify ({ending})"
    finally:
        proc.kill()
        proc.wait()
        _kill(_running(marker))


def _marker() -> str:
    """A unique sleep duration, found in the command lines of the learner's processes."""
    return f"{4000 + secrets.randbelow(5000)}.{secrets.randbelow(10**9):09d}"


@pytest.mark.parametrize("ending", list(ENDINGS))
@pytest.mark.parametrize("name", sorted(ALL))
def test_no_descendant_outlives_verify(tmp_path, name, ending):
    layers = ALL[name]
    needs(layers)
    marker = _marker()
    path = learner(tmp_path / "spawner", SPAWNER.format(marker=marker,
                                                        hang=ending != "finished"))
    _end_and_check(driver(layers, str(path), "--backends", "none", "--timeout", "inf"), marker,
                   ending, 2)


@pytest.mark.parametrize("name", sorted(ALL))
def test_no_descendant_outlives_parallel_grading(tmp_path, name):
    layers = ALL[name]
    needs(layers)
    marker = _marker()
    for student in ("one.py", "two.py"):
        learner(tmp_path / "class", SPAWNER.format(marker=marker, hang=True), student)
    _end_and_check(driver(layers, str(tmp_path / "class"), "--jobs", "2", "--timeout", "inf",
                          "--sandbox", "auto" if name in CONFINING else "off"),
                   marker, "SIGTERM", 4)


def test_grading_a_folder_without_a_sandbox_needs_sandbox_off(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(sandbox, "bwrap_works", lambda: "bubblewrap (bwrap) is not installed")
    monkeypatch.setattr(sandbox, "fallback_layers",
                        lambda: (("reaper",), (("namespaces", "no user namespaces here"),)))
    folder = tmp_path / "submissions"
    for name in ("one.py", "two.py"):
        learner(folder, f"open({str(tmp_path / 'ran')!r}, 'w').close()\n", name)
    code = main(["verify", str(folder), "--jobs", "2"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "--sandbox off" in err, err
    assert not (tmp_path / "ran").exists()
    code = main(["verify", str(folder), "--jobs", "2", "--sandbox", "off"])
    captured = capsys.readouterr()
    assert code == 0, captured.out
    assert captured.err.count("warning:") == 1, captured.err  # once per run, not per file


def test_an_inherited_address_space_limit_is_respected(tmp_path):
    path = learner(tmp_path / "limited", "")
    probe = ("import resource, sys\n"
             "resource.setrlimit(resource.RLIMIT_AS, (8_000_000_000, 8_000_000_000))\n"
             "from nnparity.cli import main\n"
             f"sys.exit(main(['verify', {str(path)!r}, '--backends', 'none']))\n")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          timeout=120, check=False)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert "not allowed to raise maximum limit" not in done.stdout + done.stderr


def test_a_fifo_in_the_folder_is_left_out_with_a_note(tmp_path, capsys):
    path = learner(tmp_path / "with-fifo", "")
    os.mkfifo(path.parent / "results.fifo")
    code, out, err = verify(path, capsys)
    assert code == 0, out + err
    assert "1 special file(s) in your folder (FIFO, socket or device) were left out of the " \
           "copy your code ran in: results.fifo (FIFO)" in out
    assert "[(" not in out + err


def test_the_probe_drops_a_layer_that_fails_and_says_why(monkeypatch):
    tried: list[tuple[str, ...]] = []

    def launch(path, job, *, layers, **kwargs):
        tried.append(layers)
        if "namespaces" in layers:
            return sandbox.Finished(125, b"", b"", b"", setup_error="namespaces: unshare(user, "
                                    "mount, PID, network, IPC, UTS): Operation not permitted")
        return sandbox.Finished(0, b"", b"", b"")

    monkeypatch.setattr(sandbox, "launch", launch)
    monkeypatch.setattr(sandbox, "landlock_abi", lambda: 0)
    sandbox.fallback_layers.cache_clear()
    try:
        layers, missing = sandbox.fallback_layers()
    finally:
        sandbox.fallback_layers.cache_clear()
    assert tried == [("namespaces", "reaper"), ("reaper",)]
    assert layers == ("reaper",)
    assert dict(missing) == {"landlock": "the kernel offers no Landlock",
                             "namespaces": "namespaces: unshare(user, mount, PID, network, IPC, "
                                           "UTS): Operation not permitted"}
