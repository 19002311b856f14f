"""Tool caches verify themselves: a Verilator build, a cocotb build, a yosys output, a proof result,
a synthesis result and a bitstream, each damaged after it was cached, is named on stderr (its path
and what was wrong), discarded and built again, and the run gives the clean result.

The tests share one private ``LUTFORGE_CACHE``, so none damages the user's cache, and a test may
find the clean entry an earlier one rebuilt (a Verilator build takes tens of seconds). The
bitstream tests take a cache of their own: the fake tools below build entries under the same key as
the real ones.
"""

import json
from dataclasses import replace

import numpy as np
import pytest

from example_blocks import StreamAdder, WideAdder
from lutforge.boards import bitstream as bitstream_module
from lutforge.boards.bitstream import build_bitstream
from lutforge.boards.platforms import BOARDS
from lutforge.boards.synth import synthesize
from lutforge.formal.engines import prove_equivalent
from lutforge.formal.netlist import Netlist
from lutforge.formal.pipeline import processed
from lutforge.formal.results import PASS
from lutforge.formal.specs import LMulSpec
from lutforge.hdl.lmul import LMulMultiplier
from lutforge.sim.batch import BatchSim
from lutforge.sim.cocotb_run import CocotbVerilator
from lutforge.support.cache import ENTRY, cache_root


@pytest.fixture(scope="module")
def module_cache(tmp_path_factory):
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(autouse=True)
def private_cache(module_cache, monkeypatch):
    monkeypatch.setenv("LUTFORGE_CACHE", str(module_cache))


def _only_entry(kind: str):
    entries = list((cache_root() / kind).iterdir())
    assert len(entries) == 1, entries
    return entries[0]


def _discarded(capsys, path, problem: str) -> None:
    """stderr is exactly the one line that names the damaged entry and what was wrong with it."""
    assert capsys.readouterr().err == f"lutforge: discarding cache entry {path}: {problem}; it will be rebuilt.\n"


def _garble(path) -> None:
    """Overwrite ``path`` with as many bytes of garbage: a damage only the hash sees."""
    size = path.stat().st_size
    path.write_bytes((b"\x7fELF garbage" * size)[:size])


def _sum(sim) -> list[int]:
    a = np.array([(1 << 100) - 1, 5, 1 << 64], dtype=object)
    b = np.array([1, (1 << 99) + 3, 1 << 64], dtype=object)
    return [int(x) for x in sim.run_vectors({"a": a, "b": b}, latency=1).outputs["r"]]


SUMS = [1 << 100, (1 << 99) + 8, 1 << 65]


@pytest.mark.parametrize("damage", ["garbage", "truncated"])
def test_a_damaged_verilator_build_is_rebuilt(damage, capsys):
    clean = BatchSim(WideAdder(1))
    assert _sum(clean) == SUMS
    entry = _only_entry("batch")
    size = clean.executable.stat().st_size
    if damage == "garbage":
        _garble(clean.executable)
        problem = "its file obj/driver does not match the SHA-256 recorded when it was built"
    else:
        clean.executable.write_bytes(clean.executable.read_bytes()[:size // 2])
        problem = f"its file obj/driver has {size // 2} bytes, {size} were recorded"
    capsys.readouterr()
    again = BatchSim(WideAdder(1))
    _discarded(capsys, entry, problem)
    assert not again.cached and again.executable == clean.executable
    assert _sum(again) == SUMS
    cached = BatchSim(WideAdder(1))
    assert cached.cached and _sum(cached) == SUMS and capsys.readouterr().err == ""


def test_an_interrupted_verilator_build_is_built_again_silently(capsys):
    BatchSim(WideAdder(1))
    entry = _only_entry("batch")
    # A build killed while linking: objects and a half-written executable, and no seal.
    (entry / ENTRY).unlink()
    (entry / "obj" / "driver").write_bytes(b"\x7fELF")
    capsys.readouterr()
    again = BatchSim(WideAdder(1))
    assert not again.cached and capsys.readouterr().err == ""
    assert _sum(again) == SUMS


def test_a_damaged_cocotb_build_is_rebuilt(capsys):
    payloads = np.arange(20) | (np.arange(20) << 8)
    want = [(2 * i + 1) % 512 for i in range(20)]
    clean = CocotbVerilator(StreamAdder())
    assert list(clean.run_streams({"i": payloads}, {"o": 20}, constants={"k": 1}).outputs["o"]) == want
    entry = _only_entry("cocotb")
    _garble(clean.build_path / clean.design.top)
    capsys.readouterr()
    again = CocotbVerilator(StreamAdder())
    _discarded(capsys, entry,
               f"its file build/{clean.design.top} does not match the SHA-256 recorded when it was built")
    assert not again.cached
    assert list(again.run_streams({"i": payloads}, {"o": 20}, constants={"k": 1}).outputs["o"]) == want
    cached = CocotbVerilator(StreamAdder())
    assert cached.cached
    assert list(cached.run_streams({"i": payloads}, {"o": 20}, constants={"k": 1}).outputs["o"]) == want


def test_a_damaged_yosys_output_is_rebuilt(capsys):
    netlist = Netlist.of(LMulMultiplier("e4m3", latency=1), "gate")
    clean = processed(netlist)
    entry = _only_entry("formal-pipeline")
    # Registers with an enable: a netlist that would mislead Lemma 1, not one yosys refuses.
    edited = clean.replace("cell $dff ", "cell $dffe ")
    assert edited != clean
    (entry / "proc.il").write_text(edited)
    capsys.readouterr()
    assert processed(netlist) == clean
    _discarded(capsys, entry, f"its file proc.il has {len(edited)} bytes, {len(clean)} were recorded")


def _proof():
    return prove_equivalent(LMulSpec("e4m3"), LMulMultiplier("e4m3"), engine="sat")


def test_a_tampered_proof_result_is_proven_again(capsys):
    clean = _proof()
    assert clean.status == PASS
    result_file = _only_entry("formal") / "result.json"
    # A result edited to say something else than what was proven must not be believed.
    tampered = json.dumps(json.loads(result_file.read_text()) | {"detail": "edited by hand"})
    result_file.write_text(tampered)
    capsys.readouterr()
    again = _proof()
    _discarded(capsys, result_file,
               f"its content ({len(tampered)} bytes) does not match the SHA-256 recorded when it was written")
    assert not again.cached
    assert replace(again, seconds=0, workdir="") == replace(clean, seconds=0, workdir="", cached=False)
    assert _proof().cached and capsys.readouterr().err == ""


def test_a_damaged_synthesis_result_is_synthesised_again(capsys):
    clean = synthesize(WideAdder(1, width=8), "ice40", pnr=False)
    assert clean.luts > 0
    entry = _only_entry("synth")
    text = (entry / "result.json").read_text()
    # A count changed to another of as many digits: only the hash tells.
    edited = text.replace(f'"luts": {clean.luts}', f'"luts": {"9" * len(str(clean.luts))}')
    assert edited != text
    (entry / "result.json").write_text(edited)
    capsys.readouterr()
    again = synthesize(WideAdder(1, width=8), "ice40", pnr=False)
    _discarded(capsys, entry, "its file result.json does not match the SHA-256 recorded when it was built")
    assert not again.cached
    assert replace(again, seconds=0) == replace(clean, seconds=0, cached=False)
    assert synthesize(WideAdder(1, width=8), "ice40", pnr=False).cached


REPORT = {"utilization": {"ICESTORM_LC": {"used": 100, "available": 5280}},
          "fmax": {"cd_sync.clk": {"achieved": 30.0, "constraint": 12.0}}}
FAKE_BITSTREAM = b"\xff\x00" * 50


def _fake_tools(runs: list):
    """Stands in for yosys, nextpnr and icepack, writing what they would, so the entry logic is
    tested in seconds (the last test runs the real tools)."""
    def run_steps(path, board, commands, show_progress):
        runs.append(path)
        (path / "top.bin").write_bytes(FAKE_BITSTREAM)
        (path / "report.json").write_text(json.dumps(REPORT))
        (path / "top.tim").write_text("Info: Max frequency for clock 'cd_sync.clk': 30.00 MHz\n")
        return {"yosys": 1.0, "nextpnr-ice40": 2.0, "icepack": 0.5}
    return run_steps


def _lmul_soc():
    return BOARDS["icebreaker"].soc_config(core="lmul-vector")


def test_a_truncated_bitstream_is_built_again_never_copied_out(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("LUTFORGE_CACHE", str(tmp_path))
    runs = []
    monkeypatch.setattr(bitstream_module, "_run_steps", _fake_tools(runs))
    clean = build_bitstream("icebreaker", _lmul_soc(), show_progress=False)
    assert not clean.cached and clean.bitstream.read_bytes() == FAKE_BITSTREAM
    assert build_bitstream("icebreaker", _lmul_soc(), show_progress=False).cached and len(runs) == 1
    clean.bitstream.write_bytes(b"")
    capsys.readouterr()
    again = build_bitstream("icebreaker", _lmul_soc(), show_progress=False)
    _discarded(capsys, _only_entry("bitstream"), f"its file top.bin has 0 bytes, {len(FAKE_BITSTREAM)} were recorded")
    assert len(runs) == 2 and not again.cached
    assert again.bitstream.read_bytes() == FAKE_BITSTREAM
    assert (again.utilization, again.fmax, again.steps) == (clean.utilization, clean.fmax, clean.steps)


def test_an_interrupted_bitstream_build_leaves_no_entry(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("LUTFORGE_CACHE", str(tmp_path))

    def killed(path, board, commands, show_progress):
        (path / "top.bin").write_bytes(b"\xff")  # icepack stopped half way
        raise KeyboardInterrupt

    monkeypatch.setattr(bitstream_module, "_run_steps", killed)
    with pytest.raises(KeyboardInterrupt):
        build_bitstream("icebreaker", _lmul_soc(), show_progress=False)
    runs = []
    monkeypatch.setattr(bitstream_module, "_run_steps", _fake_tools(runs))
    report = build_bitstream("icebreaker", _lmul_soc(), show_progress=False)
    assert len(runs) == 1 and not report.cached and capsys.readouterr().err == ""
    assert report.bitstream.read_bytes() == FAKE_BITSTREAM


@pytest.mark.slow  # a real iCE40 build, ~30 s; the stand-in tools above keep the logic in make test
def test_a_truncated_real_bitstream_is_rebuilt(tmp_path, monkeypatch, capsys):
    # Two builds of the L-Mul vector SoC, about half a minute each.
    monkeypatch.setenv("LUTFORGE_CACHE", str(tmp_path))
    clean = build_bitstream("icebreaker", _lmul_soc(), show_progress=False)
    data = clean.bitstream.read_bytes()
    clean.bitstream.write_bytes(b"")
    capsys.readouterr()
    again = build_bitstream("icebreaker", _lmul_soc(), show_progress=False)
    _discarded(capsys, _only_entry("bitstream"), f"its file top.bin has 0 bytes, {len(data)} were recorded")
    assert not again.cached and again.bitstream.read_bytes() == data
    assert (again.utilization, again.fmax) == (clean.utilization, clean.fmax)
