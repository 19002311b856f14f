"""The design space of ``lutforge explore``: a YAML file of dimensions over configuration keys, and
the samplers that draw points from it.

A space file names a base configuration (any keys of a ``lutforge compile`` configuration) and
dimensions, each a dotted configuration key with its values::

    name: explore-small
    sampler: grid              # grid | random | tpe (Optuna's multi-objective TPE)
    samples: 4                 # random and tpe: how many distinct points
    seed: 0
    sim_check: 1               # points whose cycles are checked against the simulated RTL
    base:                      # the configuration every point starts from
      model: smollm2
      calibration: {windows: 1, window: 256, rows: 256}
      evaluation: {windows: 1, window: 64}     # the quality measure: perplexity on these windows
    dimensions:
      lut_methods.default: {mxint4: {kind: mxint4}, nvfp4: {kind: nvfp4}}   # label: value
      core.lanes: [2, 4]                                                      # or a list
      target.preset: [ulx3s-85f, v80]

Every point is a whole configuration, validated by the one configuration schema
(:func:`lutforge.compiler.config.parse_config`) when the space is loaded, so a bad value is refused
before anything runs, naming the point; the configuration of a Pareto point is what ``explore``
writes for ``lutforge compile``.
"""

from __future__ import annotations

import copy
import itertools
import random
from dataclasses import dataclass, field
from pathlib import Path

from ..compiler.config import Config, ConfigError, parse_config
from ..support.cache import content_key
from ..support.yamlfile import load_yaml

__all__ = ["Space", "SpacePoint", "load_space", "parse_space", "SAMPLERS", "grid_points", "random_points"]

SAMPLERS = ("grid", "random", "tpe")
_KEYS = ("name", "sampler", "samples", "seed", "sim_check", "base", "dimensions")
# A point's configuration is a file people open: a sweep of more points than this is a mistake in
# the space (a forgotten dimension), not a plan; sample it with random or tpe instead.
MAX_GRID = 4096


@dataclass(frozen=True)
class SpacePoint:
    """One point: a label per dimension and the validated configuration they give."""
    id: str
    labels: tuple[tuple[str, str], ...]  # (dimension, label) in the space's order
    data: dict = field(compare=False)    # the configuration as a YAML mapping
    config: Config = field(compare=False)

    @property
    def label(self) -> str:
        return " ".join(label for _, label in self.labels)


@dataclass(frozen=True)
class Space:
    name: str
    sampler: str
    samples: int
    seed: int
    sim_check: int
    base: dict
    dimensions: tuple[tuple[str, tuple[tuple[str, object], ...]], ...]  # (key, ((label, value), ...))

    @property
    def size(self) -> int:
        size = 1
        for _, values in self.dimensions:
            size *= len(values)
        return size

    def point(self, choice: tuple[int, ...]) -> SpacePoint:
        """The point of one value index per dimension."""
        data = copy.deepcopy(self.base)
        labels = []
        for (key, values), i in zip(self.dimensions, choice):
            label, value = values[i]
            _set(data, key, copy.deepcopy(value))
            labels.append((key, label))
        # The same point whatever order the dimensions are written in.
        ident = content_key(self.name, sorted(labels))[:10]
        data["name"] = f"{self.name}-{ident}"
        where = f"point {' '.join(l for _, l in labels)} of space {self.name}"
        try:
            config = parse_config(data, where)
        except ConfigError as error:
            # Value checks do not name the file they read; the point is named for them.
            raise ConfigError(str(error) if where in str(error) else f"{where[0].upper()}{where[1:]}: {error}") from None
        return SpacePoint(ident, tuple(labels), data, config)


def _set(data: dict, dotted: str, value) -> None:
    """``data[a][b]... = value`` for the dotted key ``a.b...``, making the mappings on the way."""
    *path, last = dotted.split(".")
    for part in path:
        data = data.setdefault(part, {})
        if not isinstance(data, dict):
            raise ConfigError(f"Dimension {dotted!r} sets a key inside {part!r}, which the base configuration "
                              f"gives as a value, not a mapping; remove {part!r} from 'base'.")
    data[last] = value


def _int(data: dict, key: str, name: str, default: int, low: int) -> int:
    value = data.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ConfigError(f"{key}={value!r} in {name} must be a whole number >= {low}; fix it.")
    return value


def _dimension(key, values, name: str) -> tuple[str, tuple[tuple[str, object], ...]]:
    if not isinstance(key, str) or "." not in key:
        raise ConfigError(f"Dimension {key!r} in {name} is not a dotted configuration key such as core.lanes or "
                          f"target.preset; name the key it sets.")
    if isinstance(values, dict):
        pairs = tuple((str(label), value) for label, value in values.items())
    elif isinstance(values, list):
        pairs = tuple((str(value) if not isinstance(value, dict) else content_key(value)[:6], value)
                      for value in values)
    else:
        raise ConfigError(f"Dimension {key} in {name} must be a list of values or a mapping of label to value; "
                          f"got {values!r}.")
    if not pairs:
        raise ConfigError(f"Dimension {key} in {name} has no values; give at least one or remove it.")
    labels = [label for label, _ in pairs]
    if len(set(labels)) != len(labels):
        raise ConfigError(f"Dimension {key} in {name} repeats a value; give each once.")
    return key, pairs


def parse_space(data, name: str = "space") -> Space:
    if not isinstance(data, dict):
        raise ConfigError(f"The space {name} must be a mapping with keys {', '.join(_KEYS)}; got "
                          f"{type(data).__name__}.")
    unknown = sorted(set(data) - set(_KEYS), key=str)
    if unknown:
        raise ConfigError(f"Unknown key {unknown[0]!r} in {name}; allowed keys: {', '.join(_KEYS)}.")
    sampler = data.get("sampler", "grid")
    if sampler not in SAMPLERS:
        raise ConfigError(f"sampler={sampler!r} in {name} is not a sampler; use one of {', '.join(SAMPLERS)}.")
    dims = data.get("dimensions")
    if not isinstance(dims, dict) or not dims:
        raise ConfigError(f"The space {name} has no 'dimensions'; give a mapping of configuration keys to their "
                          f"values, e.g. core.lanes: [4, 16].")
    base = data.get("base", {})
    if not isinstance(base, dict):
        raise ConfigError(f"'base' in {name} must be a configuration mapping; got {base!r}.")
    space_name = data.get("name", Path(name).stem)
    if not isinstance(space_name, str) or not space_name or "/" in space_name:
        raise ConfigError(f"name={space_name!r} in {name} must be a text without '/'; fix it.")
    space = Space(space_name, sampler, _int(data, "samples", name, 0, 0), _int(data, "seed", name, 0, 0),
                  _int(data, "sim_check", name, 0, 0), base,
                  tuple(_dimension(key, values, name) for key, values in dims.items()))
    if sampler == "grid":
        if "samples" in data:
            raise ConfigError(f"samples={data['samples']!r} in {name} would be ignored: the grid sampler takes "
                              f"every point; remove it or use sampler: random or tpe.")
        if space.size > MAX_GRID:
            raise ConfigError(f"The grid of {name} has {space.size} points, more than {MAX_GRID}; sample it with "
                              f"sampler: random or tpe and samples: N.")
    elif not 1 <= space.samples <= space.size:
        raise ConfigError(f"samples={space.samples} in {name} must be between 1 and the space's {space.size} "
                          f"points; fix it.")
    # Every point is checked now, so that no sweep stops half-way on a bad combination.
    for choice in itertools.product(*(range(len(v)) for _, v in space.dimensions)):
        space.point(choice)
    return space


def load_space(path) -> Space:
    return parse_space(load_yaml(Path(path), "space file"), str(path))


def grid_points(space: Space) -> list[SpacePoint]:
    return [space.point(c) for c in itertools.product(*(range(len(v)) for _, v in space.dimensions))]


def random_points(space: Space) -> list[SpacePoint]:
    """``space.samples`` distinct points drawn uniformly, the same for the same seed."""
    choices = list(itertools.product(*(range(len(v)) for _, v in space.dimensions)))
    return [space.point(c) for c in random.Random(space.seed).sample(choices, space.samples)]
