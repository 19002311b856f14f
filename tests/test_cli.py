"""The command line: help, Verilog for every block, self-checks, JSON output, clear errors."""

import json

import pytest

from lutforge.blocks import catalogue
from lutforge.cli import main
from lutforge.sim.lint import lint
from lutforge.sim.rtl import elaborate


def test_help_lists_the_commands(capsys):
    with pytest.raises(SystemExit) as exit:
        main(["--help"])
    assert exit.value.code == 0
    out = capsys.readouterr().out
    for command in ("blocks", "verilog", "sim", "demo", "compile", "run", "quantize", "prove", "bitstream"):
        assert command in out


def test_verilog_writes_a_module(tmp_path, capsys):
    path = tmp_path / "lmul.v"
    assert main(["verilog", "lmul", "--param", "format=bf16", "--param", "latency=1", "-o", str(path)]) == 0
    text = path.read_text()
    assert "module top(" in text and "input [15:0] a;" in text and "input clk;" in text


def test_unknown_parameter_is_named(capsys):
    assert main(["verilog", "lmul", "--param", "lanes=4"]) == 2
    assert capsys.readouterr().err.strip() == (
        "lutforge: Block 'lmul' has no parameter lanes; its parameters are format, latency, policy, overflow.")


def test_unknown_block_is_named(capsys):
    assert main(["sim", "nonesuch"]) == 2
    assert "No block named 'nonesuch'; the registered blocks are" in capsys.readouterr().err


def test_sim_writes_json(tmp_path, capsys):
    path = tmp_path / "r.json"
    assert main(["sim", "lmul", "--param", "format=e2m1", "--json", str(path)]) == 0
    result = json.loads(path.read_text())
    assert result["passed"] and result["exhaustive"] and result["vectors"] == 256
    assert "256 of 256 all vectors agree" in capsys.readouterr().out


@pytest.mark.parametrize("name,example", [(name, example) for name, block in catalogue().items()
                                          for example in block.lint_examples])
def test_every_registered_block_is_lint_clean(name, example):
    block = catalogue()[name]
    assert lint(elaborate(block.build(block.resolve(example)))) == []


def test_board_run_without_port_says_what_to_pass(capsys):
    assert main(["run", "--board", "icebreaker"]) == 2
    assert capsys.readouterr().err.strip() == (
        "lutforge: Running on board 'icebreaker' needs --port: a serial device, or 'sim' for its simulation.")
