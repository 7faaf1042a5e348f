"""One rule for every command's --seed: an integer from 0 to 2**32-1, stated in the help."""

from __future__ import annotations

import pytest

from nnparity.cli import main

COMMANDS = (["check"], ["gradcheck"], ["vectors", "export", "out"], ["verify"], ["train"])


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: c[0])
@pytest.mark.parametrize("value", [str(2**64), str(2**32), "-1"])
def test_every_command_refuses_the_same_seeds(command, value, capsys, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)  # were a seed accepted, what the command writes goes there
    with pytest.raises(SystemExit) as exit_:
        main([*command, "--seed", value])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert f"a seed is an integer from 0 to 2**32-1, got {value}" in err


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: c[0])
def test_every_help_states_the_range(command, capsys):
    with pytest.raises(SystemExit):
        main([command[0], *command[1:2], "--help"] if len(command) > 1 else [*command, "--help"])
    assert "0 to 2**32-1" in " ".join(capsys.readouterr().out.split())


def test_the_largest_seed_runs_in_check_and_gradcheck(capsys):
    top = str(2**32 - 1)
    assert main(["gradcheck", "--seed", top]) == 0
    assert main(["check", "--backends", "numpy", "--quick", "-k", "^sigmoid-l2", "--seed",
                 top]) == 0
    assert "failed" in capsys.readouterr().out
