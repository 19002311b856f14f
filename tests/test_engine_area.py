"""bench/engine_area.py: bad arguments are refused before any build, the crossover search finds
the point a brute-force scan finds (on a model of the builds, no synthesis), and ``synthesize(...,
dsp=False)``, which its soft MAC array uses, puts no multiplier into a DSP block."""

import importlib.util
import json
from pathlib import Path

import pytest

from lutforge.boards.synth import synthesize
from lutforge.hdl.mac_gemv import MacGemv

BENCH = Path(__file__).resolve().parents[1] / "bench" / "engine_area.py"


@pytest.fixture
def engine_area():
    spec = importlib.util.spec_from_file_location("engine_area_under_test", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("args, named", [(["--designs", "mac_int9"], "mac_int9"),
                                         (["--targets", "ecp5-25f"], "ecp5-25f"),
                                         (["--sweep-c-a", "sixteen"], "--sweep-c-a sixteen"),
                                         (["--per-cycle", "24"], "--per-cycle 24")])
def test_bad_arguments_are_refused_before_any_build(engine_area, monkeypatch, capsys, args, named):
    monkeypatch.setattr(engine_area, "measure", lambda *a, **k: pytest.fail("built a design"))
    assert engine_area.main(args) == 2
    err = capsys.readouterr().err
    assert f"engine_area: {named} is not allowed" in err and "mac_int8_soft" in err


# A model of the builds: LUT4 and block RAM linear in the lookups or MACs per cycle.
MODEL = {"lut_bram": (30, 20), "lut_mux": (100, 30), "mac_int8": (14, 5), "mac_int8_soft": (170, 5)}


def _fake_measure(design, per_cycle, target, *, positions, c_a=64, pnr=False):
    slope, intercept = MODEL[design]
    bram = per_cycle * (2 if c_a == 16 else 8) if design == "lut_bram" else 0
    return {"lut4": slope * per_cycle + intercept, "carries": 0, "ff": 0, "bram": bram,
            "dsp": per_cycle if design == "mac_int8" else 0, "fmax_mhz": None, "per_cycle": per_cycle,
            "pnr_error": None, "seconds": 0.0, "notes": []}


def test_the_crossover_is_the_first_point_at_the_goal(engine_area, monkeypatch, tmp_path):
    monkeypatch.setattr(engine_area, "measure", _fake_measure)
    path = tmp_path / "area.json"
    assert engine_area.main(["--designs", "mac_int8", "--targets", "ice40-up5k", "--sweep", "--json", str(path),
                             "--out", str(tmp_path)]) == 0
    assert (tmp_path / "area.png").exists()
    data = json.loads(path.read_text())
    dsps, goal = engine_area.PARTS["ice40-up5k"]["dsp"], engine_area.GOAL

    def mac(n):  # the two instances: products in the 8 DSPs, the rest in LUTs
        return sum(s * k + i for (s, i), k in ((MODEL["mac_int8"], min(n, dsps)),
                                              (MODEL["mac_int8_soft"], n - min(n, dsps))) if k)

    entries = {(e["c_a"], e["macs_per_lookup"]): e for e in data["crossover"]["ice40-up5k"] if "c_a" in e}
    for (c_a, per_lookup), e in entries.items():
        step = 2 // per_lookup
        fit = 30 // (2 if c_a == 16 else 8) // step * step
        ratios = {x: (30 * x + 20) / mac(per_lookup * x) for x in range(step, fit + 1, step)}
        expected = next((x for x, r in ratios.items() if r <= goal), None)
        assert e["lookups_per_cycle"] == expected and e["reached"] == (expected is not None) and e["settled"]
        shown = expected if expected is not None else fit
        assert e["at"]["lookups_per_cycle"] == shown and e["at"]["ratio"] == round(ratios[shown], 3)
        if expected is not None and expected > step:
            assert e["below"]["ratio"] > goal and e["below"]["lookups_per_cycle"] == expected - step
    # With the artifact's tables (8 RAMs a lookup) 2 lookups fit, too few; a quarter of them reach it.
    assert not entries[(64, 1)]["reached"] and entries[(16, 1)]["reached"]


@pytest.mark.parametrize("arch", ["ice40", "ecp5"])
def test_without_dsps_the_multipliers_are_luts(arch, monkeypatch, tmp_path):
    monkeypatch.setenv("LUTFORGE_CACHE", str(tmp_path))
    hard = synthesize(MacGemv(1, 2, "int8", max_positions=4), arch, pnr=False)
    soft = synthesize(MacGemv(1, 2, "int8", max_positions=4), arch, pnr=False, dsp=False)
    assert hard.dsps == 2 and soft.dsps == 0
    assert soft.luts > hard.luts + 100
