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
    for command in ("blocks", "verilog", "sim", "demo", "compile", "run", "generate", "quantize", "prove", "bitstream"):
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
        "lutforge: Running on board 'icebreaker' needs --port DEVICE (its serial port) or --transport sim (its SoC "
         "in Verilator).")


def _bad_yaml(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("name: x\nquantization: {c_a: 4\n")
    return str(path)


def _file_as_folder(tmp_path):
    (tmp_path / "file").write_text("")
    return str(tmp_path / "file" / "r.json")


# (arguments, the message after "lutforge: "); {tmp} is the test's folder, and a callable makes
# the file an argument names.
ERRORS = [
    pytest.param(["compile", "--config", "{tmp}/missing.yaml"],
                 "The configuration file {tmp}/missing.yaml does not exist; check the path.",
                 id="missing-config"),
    pytest.param(["compile", "--config", _bad_yaml],
                 "{tmp}/bad.yaml, line 3, column 1 is not valid YAML: expected ',' or '}}', but got "
                 "'<stream end>'; fix the file.", id="config-not-yaml"),
    pytest.param(["sim", "nonesuch"],
                 "No block named 'nonesuch'; the registered blocks are " + ", ".join(catalogue()) + ".",
                 id="unknown-block"),
    pytest.param(["verilog", "lmul", "-p", "format"], "--param takes NAME=VALUE, not 'format'.",
                 id="malformed-param"),
    pytest.param(["verilog", "lmul", "-p", "format=bf16", "-p", "format=e4m3"],
                 "--param sets format twice (format=bf16 and format=e4m3); give it once.", id="repeated-param"),
    pytest.param(["sim", "lmul", "--json", _file_as_folder],
                 "Output {tmp}/file/r.json cannot be written: {tmp}/file is a file, not a directory; "
                 "choose another path.", id="unwritable-json"),
    pytest.param(["demo", "--set", "core.lanes=["],
                 "The value of --set core.lanes, line 1, column 2 is not valid YAML: expected the node "
                 "content, but found '<stream end>'; quote it or give a plain value.", id="set-not-yaml"),
    pytest.param(["run", "--board", "icebreaker", "--transport", "sim", "--soc-config", "{tmp}/soc.yaml"],
                 "The SoC configuration file {tmp}/soc.yaml does not exist; check the path.",
                 id="missing-soc-config"),
    pytest.param(["bitstream", "--board", "icebreaker", "--config", _bad_yaml],
                 "{tmp}/bad.yaml, line 3, column 1 is not valid YAML: expected ',' or '}}', but got "
                 "'<stream end>'; fix the file.", id="soc-config-not-yaml"),
]


@pytest.mark.parametrize("argv,expected", ERRORS)
def test_expected_failures_are_one_line_and_status_2(argv, expected, tmp_path, capsys):
    argv = [a(tmp_path) if callable(a) else a.format(tmp=tmp_path) for a in argv]
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert captured.err == f"lutforge: {expected.format(tmp=tmp_path)}\n"
    assert captured.out == ""


def test_debug_shows_the_traceback():
    import subprocess
    import sys

    argv = [sys.executable, "-m", "lutforge", "verilog", "lmul", "-p", "format"]
    plain = subprocess.run(argv, capture_output=True, text=True)
    assert (plain.returncode, plain.stderr) == (2, "lutforge: --param takes NAME=VALUE, not 'format'.\n")
    debug = subprocess.run([*argv[:3], "--debug", *argv[3:]], capture_output=True, text=True)
    assert debug.returncode == 1
    assert debug.stderr.startswith("Traceback (most recent call last):")
    assert debug.stderr.endswith("UsageError: --param takes NAME=VALUE, not 'format'.\n")


def test_every_command_has_help(capsys):
    for command in ("blocks", "verilog", "sim", "demo", "compile", "run", "generate", "quantize", "prove", "bitstream"):
        with pytest.raises(SystemExit) as exit:
            main([command, "--help"])
        assert exit.value.code == 0
        assert capsys.readouterr().out.startswith(f"usage: lutforge {command}")
