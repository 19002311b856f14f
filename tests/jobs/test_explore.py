"""``lutforge explore`` on the shipped small space (configs/explore-small.yaml): the same points,
numbers and fronts on the local executor and on Ray, each from an empty cache; what it writes; the
model-based sampler; and the figures checked against arithmetic written here."""

import json
from pathlib import Path

import pytest
import yaml

from lutforge.cli import main
from lutforge.compiler.config import load_config
from lutforge.compiler.perf import TARGETS
from lutforge.jobs.explore import explore
from lutforge.jobs.explore_space import load_space
from lutforge.support.executor import get_executor

SMALL = "configs/explore-small.yaml"
# SmolLM2-135M's decoder linears: 30 blocks of q, o (576 x 576), k, v (192 x 576), gate, up, down (576 x 1536).
WEIGHTS = 30 * (2 * 576 * 576 + 2 * 192 * 576 + 3 * 576 * 1536)
NUMBERS = ("perplexity", "bits_per_weight", "tokens", "tokens_per_s", "cycles_per_token", "lut4", "ff", "dsp", "ebr",
           "fmax_mhz", "fits", "why_not")


def _numbers(result):
    return {p.id: {k: getattr(p, k) for k in NUMBERS} for p in result.points}


@pytest.fixture(scope="module")
def local_run(tmp_path_factory):
    """The small space with 2 local workers, from an empty cache, through the command line."""
    out = tmp_path_factory.mktemp("explore")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LUTFORGE_CACHE", str(out / "cache"))
        assert main(["explore", SMALL, "--workers", "2", "--out", str(out / "report"),
                     "--json", str(out / "explore.json")]) == 0
    return out, json.loads((out / "explore.json").read_text())


def test_the_json_and_the_report(local_run):
    out, data = local_run
    assert data["executor"] == "local" and data["workers"] == 2 and len(data["points"]) == 8
    for p in data["points"]:
        assert {"id", "config", "target", "perplexity", "tokens_per_s", "lut4", "fits", "seconds"} <= set(p)
    assert data["pareto"] and set(data["pareto"]) <= {p["id"] for p in data["points"] if p["fits"]}
    assert (out / "report" / "explore.md").read_text().count("\n| ") >= 8
    assert (out / "report" / "pareto_speed.png").stat().st_size > 10_000
    for ident in data["pareto"]:
        config = load_config(out / "report" / "configs" / f"{ident}.yaml")  # ready for `lutforge compile`
        point = next(p for p in data["points"] if p["id"] == ident)
        assert config.target.preset == point["target"] and config.core.lanes == point["config"]["core"]["lanes"]


def test_the_figures_follow_from_the_formats_and_the_targets(local_run):
    _, data = local_run
    for p in data["points"]:
        kind = p["config"]["lut_methods"]["default"]["kind"]
        # MXINT4 streams 4 bits and one 8-bit scale per 32 weights; MXINT8 8 bits and the scale.
        assert p["bits_per_weight"] == {"mxint4": 4.25, "mxint8": 8.25}[kind]
        mib = p["bits_per_weight"] * WEIGHTS / 8 / 2**20
        memory = TARGETS[p["target"]].memory_mib
        assert p["image_mib"] == pytest.approx(mib) and (mib <= memory) == (p["target"] == "v80")
        assert p["fits"] == (p["target"] == "v80")
        if p["target"] == "icebreaker":
            # Every lane of the block core multiplies with 32 DSPs; the UP5K has 8.
            assert p["dsp"] == 32 * p["config"]["core"]["lanes"] and not p["fits"]
            assert any("multipliers > 8 on the icebreaker" in w for w in p["why_not"])
        else:
            assert p["lut4"] is None
            # The V80 is compute bound here: a token is its cycles at 250 MHz.
            assert p["tokens_per_s"] == pytest.approx(250e6 / p["cycles_per_token"])
    same = {}
    for p in data["points"]:
        same.setdefault(json.dumps(p["config"]["lut_methods"]), set()).add(p["perplexity"])
    assert all(len(v) == 1 for v in same.values()) and len(same) == 2
    (check,) = data["sim_checks"]
    assert abs(check["error"]) <= 0.05


def test_ray_gives_the_same_points_and_fronts(local_run, tmp_path, monkeypatch):
    ray = pytest.importorskip("ray")
    _, data = local_run
    monkeypatch.setenv("LUTFORGE_CACHE", str(tmp_path / "cache"))
    try:
        result = explore(load_space(SMALL), get_executor("ray", workers=2))
    finally:
        ray.shutdown()
    local = {p["id"]: {k: p[k] for k in NUMBERS} for p in data["points"]}
    assert _numbers(result) == local
    assert result.pareto == data["pareto"] and result.pareto_area == data["pareto_area"]
    assert [c.simulated for c in result.sim_checks] == [c["simulated"] for c in data["sim_checks"]]


def test_the_model_based_sampler_draws_points_of_the_space(local_run, tmp_path, monkeypatch):
    out, data = local_run
    monkeypatch.setenv("LUTFORGE_CACHE", str(out / "cache"))
    space_file = tmp_path / "tpe.yaml"
    space = yaml.safe_load(Path(SMALL).read_text())
    space.update(sampler="tpe", samples=5, seed=1, sim_check=0)
    space_file.write_text(yaml.safe_dump(space))
    # Cached quality and area from the local run: only the sampling is new.
    result = explore(load_space(space_file), get_executor("local", workers=1))
    local = {p["id"]: {k: p[k] for k in NUMBERS} for p in data["points"]}
    assert len(result.points) == 5 and len({p.id for p in result.points}) == 5
    assert all(_numbers(result)[i] == local[i] for i in _numbers(result))
