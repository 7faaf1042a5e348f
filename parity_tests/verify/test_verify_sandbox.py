"""A learner's code cannot harm the caller, forge its results, outlive verify, or flood it.

The sandboxed tests need a working bubblewrap: without it they skip with the reason, except when
``NNPARITY_REQUIRE_SANDBOX=1`` (CI), where they fail.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path

import pytest
from learner_header import HEADER  # parity_tests/verify/, beside this file

from nnparity.cli import main
from nnparity.verify.sandbox import bwrap_works


@pytest.fixture
def sandboxed() -> None:
    why = bwrap_works()
    if why is not None:
        if os.environ.get("NNPARITY_REQUIRE_SANDBOX") == "1":
            pytest.fail(f"NNPARITY_REQUIRE_SANDBOX=1 but {why}")
        pytest.skip(why)


def learner(folder: Path, body: str, name: str = "learner.py") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(HEADER + textwrap.dedent(body))
    return path


def verify(path: Path, capsys, *extra: str) -> tuple[int, str, str]:
    code = main(["verify", str(path), "--backends", "none", *extra])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_deleting_everything_in_reach_deletes_nothing(tmp_path, capsys, sandboxed):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep.txt").write_text("keep")
    (tmp_path / "class" / "data.csv").parent.mkdir()
    (tmp_path / "class" / "data.csv").write_text("1,2\n")
    path = learner(tmp_path / "class", f"""
        import shutil
        for target in (os.getcwd(), os.environ.get("PWD", "."), os.pardir, {str(outside)!r},
                       os.path.expanduser("~"), "/tmp"):
            for root, dirs, files in os.walk(target, topdown=False):
                for f in files:
                    try:
                        os.remove(os.path.join(root, f))
                    except OSError:
                        pass
        """)
    original = path.read_text()
    code, out, _ = verify(path, capsys, "--sandbox", "require")
    assert code == 0, out
    assert (outside / "keep.txt").read_text() == "keep"
    assert (tmp_path / "class" / "data.csv").is_file() and path.read_text() == original


def test_the_folder_is_writable_and_pardir_imports_work(tmp_path, capsys, sandboxed):
    (tmp_path / "common").mkdir()
    (tmp_path / "common" / "functions.py").write_text("def twice(v):\n    return 2 * v\n")
    path = learner(tmp_path / "ch05", """
        sys.path.append(os.pardir)
        from common.functions import twice
        assert twice(1) == 2
        with open("scratch.txt", "w") as f:
            f.write("written")
        with open("/tmp/private.txt", "w") as f:
            f.write("written")
        """)
    code, out, _ = verify(path, capsys, "--sandbox", "require")
    assert code == 0, out
    assert not (path.parent / "scratch.txt").exists()


FORGER = """
    fake_arrays = {"z/1": np.zeros((5, 4)), "z/2": np.zeros((5, 2))}
    for place in (".", os.environ.get("PWD", ".")):
        try:
            np.savez(os.path.join(place, "results.npz"), **fake_arrays)
            with open(os.path.join(place, "meta.json"), "w") as f:
                f.write('{"lr": 0.1, "warnings": []}')
        except OSError:
            pass
    import io, json, struct
    buffer = io.BytesIO()
    np.savez(buffer, **fake_arrays)
    head = json.dumps({"lr": 0.1, "error": None, "warnings": [], "left_behind": []}).encode()
    frame = (b"NNPVERIFY1" + struct.pack(">QQ", len(head), len(buffer.getvalue())) + head
             + buffer.getvalue())
    for fd in range(3, 1024):
        try:
            os.write(fd, frame)
        except OSError:
            pass
    try:
        import nnparity.reference
        REFERENCE = "imported"
    except ImportError as exc:
        REFERENCE = str(exc)

    def forward(x, W1, b1, W2, b2):
        return [np.zeros((5, 4)), np.zeros((5, 2))]
    """


@pytest.mark.parametrize("mode", ["require", "off"])
def test_forged_results_deceive_nobody(tmp_path, capsys, mode, request):
    if mode == "require":
        request.getfixturevalue("sandboxed")
    path = learner(tmp_path / "forger", FORGER)
    code, out, _ = verify(path, capsys, "--sandbox", mode)
    assert code == 1, out
    assert "PASS" not in out
    assert "the results channel does not hold verify's one results frame" in out
    assert not (path.parent / "results.npz").exists()


@pytest.mark.parametrize("mode", ["require", "off"])
def test_the_reference_cannot_be_imported(tmp_path, capsys, mode, request):
    if mode == "require":
        request.getfixturevalue("sandboxed")
    path = learner(tmp_path / "importer", "from nnparity.reference import network\n")
    code, out, _ = verify(path, capsys, "--sandbox", mode)
    assert code == 1 and "importing the file raised" in out and "nnparity" in out, out


def _as_from_a_terminal() -> None:
    """In the child before exec: SIGINT at its default, as under a terminal's Ctrl-C. A test run
    started in the background of a shell without job control inherits SIGINT ignored, and
    Python keeps an ignored SIGINT ignored, so the interrupt would never arrive."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _marked(marker: str, command: str = "") -> list[int]:
    """Processes whose environment mentions ``marker`` (the learner's unique folder name) and
    whose command line starts with ``command``."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            try:
                if marker.encode() in (entry / "environ").read_bytes() and \
                        (entry / "cmdline").read_bytes().startswith(command.encode()):
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


HANGER = """
    def forward(x, W1, b1, W2, b2):
        if os.fork() == 0:
            os.setsid()
            if os.fork() == 0:
                os.execvp("sleep", ["sleep", "1000"])
            os._exit(0)
        while True:
            time.sleep(0.05)
    """


@pytest.mark.parametrize("mode", ["require", "off"])
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_to_verify_leaves_no_learner_process(tmp_path, mode, sig, request):
    if mode == "require":
        request.getfixturevalue("sandboxed")
    marker = f"learner-{uuid.uuid4().hex}"
    path = learner(tmp_path / marker, HANGER)
    proc = subprocess.Popen([sys.executable, "-m", "nnparity", "verify", str(path), "--backends",
                             "none", "--timeout", "inf", "--sandbox", mode],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            preexec_fn=_as_from_a_terminal)
    deadline = time.monotonic() + 30
    while not _marked(marker, "sleep") and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _marked(marker, "sleep"), "the learner's grandchild never started"
    proc.send_signal(sig)
    assert proc.wait(timeout=30) == 128 + sig, proc.stderr.read() if proc.stderr else ""
    time.sleep(0.2)
    assert _marked(marker) == []


def test_a_gigabyte_of_output_keeps_verify_small(tmp_path):
    path = learner(tmp_path / "talker", """
        block = b"x" * (1 << 20) + b"\\n"
        for _ in range(1024):
            os.write(1, block)
            os.write(2, block[:1024])
        """)
    probe = ("import sys\nfrom nnparity.cli import main\n"
             f"code = main(['verify', {str(path)!r}, '--backends', 'none'])\n"
             "hwm = [l for l in open('/proc/self/status') if l.startswith('VmHWM')][0]\n"
             "print('HWM', int(hwm.split()[1]) * 1024, code)\n")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          timeout=300, check=False)
    line = [x for x in done.stdout.splitlines() if x.startswith("HWM")][-1]
    _, hwm, code = line.split()
    assert code == "0", done.stdout[-2000:] + done.stderr[-2000:]
    assert int(hwm) < 200 * 2**20, f"verify's peak RSS was {int(hwm) / 2**20:.0f} MiB"


def test_timeouts_zero_and_inf(tmp_path, capsys):
    path = learner(tmp_path / "t", "")
    code, _, err = verify(path, capsys, "--timeout", "0")
    assert code == 2 and "--timeout must be positive" in err
    code, out, _ = verify(path, capsys, "--timeout", "inf")
    assert code == 0, out


def test_a_huge_batch_is_refused_up_front(tmp_path, capsys):
    path = learner(tmp_path / "b", "raise SystemExit('must not run')\n")
    start = time.perf_counter()
    code, _, err = verify(path, capsys, "--batch", "100000000000")
    assert code == 2 and "--batch 100000000000" in err and "available: lower --batch" in err
    assert time.perf_counter() - start < 5


@pytest.mark.parametrize("mode", ["auto", "off"])
def test_a_process_left_behind_is_named(tmp_path, capsys, mode):
    path = learner(tmp_path / "leaver", """
        def forward(x, W1, b1, W2, b2):
            if os.fork() == 0:
                time.sleep(1000)
            z1 = x @ W1 + b1
            return [z1, np.tanh(z1) @ W2 + b2]
        """)
    start = time.perf_counter()
    code, out, _ = verify(path, capsys, "--sandbox", mode)
    assert code == 0, out
    assert "your code left process(es) running after it returned, killed by verify" in out
    assert time.perf_counter() - start < 20  # not waited for until the timeout


def test_sandbox_require_without_bubblewrap_is_exit_2(tmp_path, capsys, monkeypatch):
    from nnparity.verify import sandbox

    monkeypatch.setattr(sandbox, "bwrap_works", lambda: "bubblewrap (bwrap) is not installed")
    path = learner(tmp_path / "r", "raise SystemExit('must not run')\n")
    code, _, err = verify(path, capsys, "--sandbox", "require")
    assert code == 2 and "--sandbox require: bubblewrap (bwrap) is not installed" in err
    _, _, err = verify(path, capsys, "--sandbox", "auto")
    assert "NOT sandboxed" in err and err.count("\n") == 1


@pytest.mark.parametrize("mode", ["require", "off"])
def test_ctrl_c_while_grading_in_parallel_leaves_no_learner_process(tmp_path, mode, request):
    if mode == "require":
        request.getfixturevalue("sandboxed")
    marker = f"learner-{uuid.uuid4().hex}"
    folder = tmp_path / marker
    for name in ("one.py", "two.py"):
        learner(folder, HANGER, name)
    proc = subprocess.Popen([sys.executable, "-m", "nnparity", "verify", str(folder), "--jobs",
                             "2", "--timeout", "inf", "--sandbox", mode],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            preexec_fn=_as_from_a_terminal)
    deadline = time.monotonic() + 30
    while len(_marked(marker, "sleep")) < 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert len(_marked(marker, "sleep")) == 2, "the learners' grandchildren never started"
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=30) == 130, proc.stderr.read() if proc.stderr else ""
    time.sleep(0.2)
    assert _marked(marker) == []


def test_no_network_in_the_sandbox(tmp_path, capsys, sandboxed):
    import socket

    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        path = learner(tmp_path / "net", f"""
            import socket
            try:
                socket.create_connection(("127.0.0.1", {port}), timeout=2).close()
                REACHED = True
            except OSError:
                REACHED = False
            assert not REACHED, "the network is reachable"
            """)
        code, out, _ = verify(path, capsys, "--sandbox", "require")
    assert code == 0, out


def test_an_interpreter_under_tmp_stays_visible_in_the_sandbox(monkeypatch, tmp_path):
    """The private ``/tmp`` must not hide a virtual environment that lives under ``/tmp`` (tox's,
    in a checkout there), nor must a hidden checkout hide the environment inside it: every mount
    comes after the shallower ones, so the deeper wins."""
    from nnparity.verify import fallback, sandbox

    checkout = Path("/tmp/some-checkout")
    venv = checkout / ".tox" / "all"
    monkeypatch.setattr(sys, "prefix", str(venv))
    monkeypatch.setattr(fallback, "hidden_folders", lambda: (checkout, checkout / "reference"))
    cmd = sandbox._bwrap_command(tmp_path, tmp_path, Path("child.py"), [f"{venv}/bin/python"])
    bind = cmd.index(str(venv)) - 1
    assert cmd[bind] == "--ro-bind" and cmd[bind + 2] == str(venv)
    assert bind > cmd.index("/tmp")  # after the private /tmp, which would hide it otherwise
    hide_checkout = cmd.index(str(checkout)) - 1
    assert cmd[hide_checkout] == "--tmpfs" and hide_checkout < bind


def test_nnparity_inside_a_visible_environment_stays_hidden(monkeypatch, tmp_path):
    """nnparity installed into the interpreter's own site-packages: the environment is bound,
    and nnparity's folder hidden after it."""
    from nnparity.verify import fallback, sandbox

    venv = Path("/opt/env")
    package = venv / "lib" / "python3.11" / "site-packages" / "nnparity"
    monkeypatch.setattr(fallback, "interpreter_folders", lambda: (venv,))
    monkeypatch.setattr(fallback, "hidden_folders", lambda: (package,))
    cmd = sandbox._bwrap_command(tmp_path, tmp_path, Path("child.py"), ["python"])
    assert cmd.index(str(venv)) < cmd.index(str(package))
    assert cmd[cmd.index(str(package)) - 1] == "--tmpfs"
