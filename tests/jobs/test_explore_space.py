"""The design-space file of ``lutforge explore``: its points (each a configuration validated by
the one schema), its samplers, the Pareto front, and every bad space refused in one line before
any work."""

import dataclasses
import itertools

import pytest
from bad_input import Case, check_case

from lutforge.compiler.config import ConfigError
from lutforge.jobs.explore import PointResult, front
from lutforge.jobs.explore_space import load_space, parse_space

SMALL = "configs/explore-small.yaml"
BASE = "base: {model: smollm2}\n"


def test_the_small_space_is_a_grid_of_whole_configurations():
    space = load_space(SMALL)
    points = [space.point(c) for c in itertools.product(range(2), range(2), range(2))]
    assert space.size == 8 and len({p.id for p in points}) == 8
    p = points[-1]
    assert p.label == "mxint8 2 v80"
    assert p.config.lut_methods.default.kind == "mxint8" and p.config.core.lanes == 2
    assert p.config.target.preset == "v80" and p.config.core.max_positions == 48
    # The base is not changed by the points drawn from it.
    assert space.base["lut_methods"]["default"] == {"kind": "mxint4"}


def test_random_sampling_draws_distinct_points_by_seed():
    data = {"name": "s", "sampler": "random", "samples": 5, "seed": 3, "base": {"model": "smollm2"},
            "dimensions": {"core.lanes": [1, 2, 4, 8], "core.chains": [1, 2, 4]}}
    from lutforge.jobs.explore_space import random_points
    first = [p.id for p in random_points(parse_space(data))]
    assert len(set(first)) == 5 and first == [p.id for p in random_points(parse_space(data))]
    other = [p.id for p in random_points(parse_space({**data, "seed": 4}))]
    assert other != first


def _point(ident, ppl, speed, lut4=None, fits=True):
    return PointResult(ident, ident, {}, "t", ppl, 4.0, 32, speed, 1, 1.0, [], lut4, None, None, None, None, 1.0,
                       fits, [], 0.0)


def test_the_front_keeps_exactly_the_undominated_fitting_points():
    points = [_point("a", 10, 1), _point("b", 12, 5), _point("c", 11, 0.5), _point("d", 12, 5.0),
              _point("e", 9, 0.1, fits=False), _point("f", 20, 6), _point("g", 12, 4)]
    # c is beaten by a (lower perplexity, faster); d ties b exactly (neither beats the other); g is
    # beaten by b; e does not fit.
    assert front(points, lambda p: p.tokens_per_s) == ["a", "b", "d", "f"]
    # Perplexity against LUTs: every point with fewer LUTs than all better ones stays; g (12, 70)
    # is beaten by b (12, 50).
    area = [dataclasses.replace(p, lut4=l) for p, l in zip(points, (100, 50, 60, None, 1, 40, 70))]
    assert front(area, lambda p: -p.lut4 if p.lut4 is not None else None) == ["a", "c", "b", "f"]


def space_case(ident, text, first_line):
    return Case(ident, ("explore", "{tmp}/s.yaml"), first_line.replace("SPACE", "{tmp}/s.yaml"), {"s.yaml": text})


CASES = [
    space_case("unknown-key", "name: s\nsamplr: grid\ndimensions: {core.lanes: [2]}\n",
               "lutforge: Unknown key 'samplr' in SPACE; allowed keys: name, sampler, samples, seed, sim_check, base, "
               "dimensions."),
    space_case("bad-sampler", "sampler: bayes\ndimensions: {core.lanes: [2]}\n",
               "lutforge: sampler='bayes' in SPACE is not a sampler; use one of grid, random, tpe."),
    space_case("no-dimensions", "name: s\n" + BASE,
               "lutforge: The space SPACE has no 'dimensions'; give a mapping of configuration keys to their values, "
               "e.g. core.lanes: [4, 16]."),
    space_case("samples-on-grid", "samples: 3\ndimensions: {core.lanes: [2, 4]}\n",
               "lutforge: samples=3 in SPACE would be ignored: the grid sampler takes every point; remove it or use "
               "sampler: random or tpe."),
    space_case("samples-above-size", "sampler: random\nsamples: 5\ndimensions: {core.lanes: [2, 4]}\n",
               "lutforge: samples=5 in SPACE must be between 1 and the space's 2 points; fix it."),
    space_case("samples-zero", "sampler: tpe\nsamples: 0\ndimensions: {core.lanes: [2, 4]}\n",
               "lutforge: samples=0 in SPACE must be between 1 and the space's 2 points; fix it."),
    space_case("seed-negative", "seed: -1\ndimensions: {core.lanes: [2]}\n",
               "lutforge: seed=-1 in SPACE must be a whole number >= 0; fix it."),
    space_case("undotted-dimension", "dimensions: {lanes: [2]}\n",
               "lutforge: Dimension 'lanes' in SPACE is not a dotted configuration key such as core.lanes or "
               "target.preset; name the key it sets."),
    space_case("empty-dimension", "dimensions: {core.lanes: []}\n",
               "lutforge: Dimension core.lanes in SPACE has no values; give at least one or remove it."),
    space_case("repeated-value", "dimensions: {core.lanes: [2, 2]}\n",
               "lutforge: Dimension core.lanes in SPACE repeats a value; give each once."),
    space_case("scalar-dimension", "dimensions: {core.lanes: 2}\n",
               "lutforge: Dimension core.lanes in SPACE must be a list of values or a mapping of label to value; "
               "got 2."),
    space_case("unknown-config-key", "name: s\ndimensions: {core.lane: [2]}\n",
               "lutforge: Unknown key core.lane in point 2 of space s; allowed keys: lanes, chains, max_positions, "
               "metric, memory_latency, tables."),
    space_case("bad-point-value", "name: s\ndimensions: {target.preset: [v80, de10]}\n",
               "lutforge: Point de10 of space s: target.preset='de10' is not one of 'sim', 'icebreaker', "
               "'ulx3s-85f', 'orangecrab-25f', 'v80'."),
    space_case("grid-too-large", "dimensions: {core.lanes: " + str(list(range(1, 65))) + ", core.max_positions: "
               + str(list(range(1, 66))) + "}\n",
               "lutforge: The grid of SPACE has 4160 points, more than 4096; sample it with sampler: random or tpe "
               "and samples: N."),
    Case("space-missing", ("explore", "{tmp}/none.yaml"),
         "lutforge: The space file {tmp}/none.yaml does not exist; check the path."),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_bad_space(case, tmp_path, capsys):
    check_case(case, tmp_path, capsys)


def test_a_bad_point_is_refused_when_the_space_is_loaded():
    with pytest.raises(ConfigError, match="^Point 0 of space s: core.lanes=0 is not an integer from 1 to 1024.$"):
        parse_space({"name": "s", "dimensions": {"core.lanes": [0]}})


def test_a_sampler_that_stops_short_says_so(monkeypatch):
    """TPE on a space of 2 points asked for 2: a sampler proposing only seen points stops after
    20 x samples asks, and the result names the shortfall."""
    from lutforge.jobs import explore as job
    from lutforge.support.executor import get_executor

    space = parse_space({"name": "s", "sampler": "tpe", "samples": 2, "base": {"model": "smollm2"},
                         "dimensions": {"core.lanes": [1, 2]}})
    first = space.point((0,))
    scored = _point(first.id, 10.0, 1.0)
    # Every proposal scores as the first point: no second point is ever seen.
    monkeypatch.setattr(job, "_score", lambda points, *a: [scored for _ in points])
    result = job.explore(space, get_executor("local"))
    assert [p.id for p in result.points] == [first.id]
    assert result.notes == ["The tpe sampler kept proposing points it had scored and stopped after 40 asks with 1 "
                            "of the 2 points asked for; sample a larger space or ask for fewer."]
