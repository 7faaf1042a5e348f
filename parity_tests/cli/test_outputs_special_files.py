"""The output rule (:mod:`nnparity.files.outputs`, ``docs/outputs.md``) for paths that exist and are
not regular files, through the real commands the issue named: ``export -o``, ``train --save`` and
``--metrics``, ``check --json``, ``verify --junit``, ``bench --markdown``.

A character device (made like ``/dev/null``) is written into and stays a device; a FIFO without
a reader is refused (exit 2, one line) before any work and stays a FIFO; a FIFO with a reader
gets the whole file; a socket is refused; a symlink is followed and stays a link. Commands run
in-process (``nnparity.cli.main``).
"""

from __future__ import annotations

import os
import socket
import stat
from pathlib import Path

import pytest

from nnparity.cli import main

EXAMPLE = Path(__file__).parents[2] / "examples" / "verify" / "correct_column.py"
QUICK_CASE = "sigmoid-l2-sum-wd0-sgd-f64-b4-iris"

COMMANDS = {
    "export -o": ["export", "seed000-iris", "--framework", "numpy", "-o", "{out}"],
    "train --save": ["train", "--preset", "seed000-iris", "--epochs", "1", "--save", "{out}"],
    "train --metrics": ["train", "--preset", "seed000-iris", "--epochs", "1", "--metrics",
                        "{out}"],
    "check --json": ["check", "--backends", "numpy", "--quick", "-k", QUICK_CASE, "--json",
                     "{out}"],
    "verify --junit": ["verify", str(EXAMPLE), "--backends", "none", "--sandbox", "off",
                       "--junit", "{out}"],
    "bench --markdown": ["bench", "--backends", "numpy", "--rows", "256", "--markdown", "{out}"],
}


def _argv(command: str, out: Path) -> list[str]:
    return [a.replace("{out}", str(out)) for a in COMMANDS[command]]


def null_device(path: Path) -> Path:
    """A character device with /dev/null's numbers at ``path`` (needs root)."""
    try:
        os.mknod(path, stat.S_IFCHR | 0o666, os.makedev(1, 3))
    except PermissionError:
        pytest.skip("mknod of a character device is not permitted here (not root)")
    return path


def _suffixed(tmp_path: Path, command: str, name: str) -> Path:
    """``name`` with the suffix the option needs (``--metrics`` takes .csv or .json)."""
    return tmp_path / (name + (".csv" if command == "train --metrics" else ""))


@pytest.mark.parametrize("command", list(COMMANDS))
def test_a_character_device_is_written_into_not_replaced(command, tmp_path, capsys):
    device = null_device(_suffixed(tmp_path, command, "null"))
    before = os.stat(device)
    assert main(_argv(command, device)) == 0, capsys.readouterr().err
    after = os.stat(device)
    assert stat.S_ISCHR(after.st_mode) and after.st_rdev == before.st_rdev
    assert after.st_ino == before.st_ino
    assert not [p for p in tmp_path.iterdir() if p != device]  # no temporary file left


@pytest.mark.parametrize("command", list(COMMANDS))
def test_a_fifo_without_a_reader_is_refused_before_any_work(command, tmp_path, capsys):
    fifo = _suffixed(tmp_path, command, "pipe")
    os.mkfifo(fifo)
    assert main(_argv(command, fifo)) == 2
    captured = capsys.readouterr()
    assert "it is a FIFO and no process is reading it" in captured.err
    assert len(captured.err.strip().splitlines()) == 1 and "Traceback" not in captured.err
    assert captured.out == ""  # refused before any work: nothing trained, run or printed
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)


@pytest.mark.parametrize("command", ["export -o", "train --metrics"])
def test_a_fifo_with_a_reader_gets_the_whole_file(command, tmp_path, capsys):
    fifo = _suffixed(tmp_path, command, "pipe")
    os.mkfifo(fifo)
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)  # the file fits the pipe's buffer
    try:
        assert main(_argv(command, fifo)) == 0, capsys.readouterr().err
        received = b""
        while chunk := os.read(reader, 1 << 16):  # b"" once nnparity closed it: the end
            received += chunk
    finally:
        os.close(reader)
    text = received.decode()
    assert text.startswith('"""Preset seed000-iris' if command == "export -o" else "epoch,loss")
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)


def test_a_socket_is_refused(tmp_path, capsys):
    path = tmp_path / "sock"
    server = socket.socket(socket.AF_UNIX)
    try:
        server.bind(str(path))
        assert main(_argv("export -o", path)) == 2
    finally:
        server.close()
    assert "it is a socket" in capsys.readouterr().err
    assert stat.S_ISSOCK(os.lstat(path).st_mode)


def test_a_symlink_to_a_file_is_followed_and_stays_a_link(tmp_path, capsys):
    target = tmp_path / "real.py"
    target.write_text("old\n")
    link = tmp_path / "link.py"
    link.symlink_to(target.name)
    assert main(_argv("export -o", link)) == 0, capsys.readouterr().err
    assert link.is_symlink() and os.readlink(link) == target.name
    assert target.read_text().startswith('"""Preset seed000-iris')


def test_a_symlink_to_a_device_writes_into_the_device(tmp_path, capsys):
    device = null_device(tmp_path / "null")
    link = tmp_path / "link"
    link.symlink_to(device)
    assert main(_argv("export -o", link)) == 0, capsys.readouterr().err
    assert link.is_symlink() and stat.S_ISCHR(os.stat(device).st_mode)


def test_a_dangling_symlink_creates_its_target(tmp_path, capsys):
    link = tmp_path / "link.py"
    link.symlink_to("made.py")
    assert main(_argv("export -o", link)) == 0, capsys.readouterr().err
    assert link.is_symlink() and (tmp_path / "made.py").read_text().startswith('"""Preset')


def test_a_fifo_inside_an_output_folder_is_not_replaced(tmp_path, capsys):
    """Files a command writes into a folder follow the same rule when they are written."""
    pytest.importorskip("matplotlib", reason="--plot needs matplotlib")
    folder = tmp_path / "plots"
    folder.mkdir()
    os.mkfifo(folder / "curves.png")
    assert main(["train", "--preset", "seed000-iris", "--epochs", "1", "--plot",
                 str(folder)]) == 2
    assert "it is a FIFO and no process is reading it" in capsys.readouterr().err
    assert stat.S_ISFIFO(os.lstat(folder / "curves.png").st_mode)


def test_a_link_the_kernel_resolves_to_a_pipe_is_written_into(tmp_path, capsys):
    """Like ``-o /dev/stdout`` when stdout is a pipe: the link's text names no file
    (``pipe:[...]``), so the kind of the path is what ``stat`` finds through it."""
    reader, writer = os.pipe()
    link = tmp_path / "stdout"
    link.symlink_to(f"/proc/self/fd/{writer}")
    try:
        assert main(_argv("export -o", link)) == 0, capsys.readouterr().err
        os.close(writer)
        received = b""
        while chunk := os.read(reader, 1 << 16):
            received += chunk
    finally:
        os.close(reader)
    assert received.decode().startswith('"""Preset seed000-iris')
    assert link.is_symlink()
