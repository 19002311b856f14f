"""L-Mul multiplier in the block catalogue."""

import numpy as np

from ..golden import formats
from ..golden.lmul import LMulPolicy, lmul
from ..support.errors import UsageError
from . import LATENCY, Block, Param, register


def _policy(params) -> LMulPolicy:
    return LMulPolicy.wrap() if params["policy"] == "wrap" else LMulPolicy(overflow=params["overflow"])


def _check(params):
    fmt = formats.get(params["format"])
    if params["policy"] == "default" and params["overflow"] == "inf" and not fmt.has_nan:
        raise UsageError(f"Block 'lmul' parameter overflow=inf needs a format with Inf or NaN, and {fmt.name} has "
                         f"neither; use overflow=saturate or another format.")


def _build(params):
    from ..hdl.lmul import LMulMultiplier
    return LMulMultiplier(params["format"], _policy(params), latency=params["latency"])


def _vectors(params, rng, count):
    width = formats.get(params["format"]).width
    return {"a": rng.integers(0, 1 << width, count, dtype=np.uint64),
            "b": rng.integers(0, 1 << width, count, dtype=np.uint64)}


def _exhaustive(params):
    width = formats.get(params["format"]).width
    if 2 * width > 20:
        return None
    a, b = np.meshgrid(np.arange(1 << width, dtype=np.uint64), np.arange(1 << width, dtype=np.uint64))
    return {"a": a.ravel(), "b": b.ravel()}


def _golden(params, inputs):
    return {"r": lmul(inputs["a"], inputs["b"], params["format"], _policy(params))}


register(Block(
    name="lmul",
    summary="L-Mul approximate floating-point multiplier (one integer add).",
    build=_build,
    params={
        "format": Param("e4m3", "element format", choices=tuple(n for n, f in formats.PRESETS.items() if f.signed)),
        "latency": LATENCY,
        "policy": Param("default", "special-case handling: 'default' or the paper's bare adder 'wrap'",
                        choices=("default", "wrap")),
        "overflow": Param("saturate", "overflow policy (the bare adder wraps)", choices=("saturate", "inf"),
                          unused_when={"policy": "wrap"}),
    },
    vectors=_vectors,
    golden=_golden,
    latency=lambda params: params["latency"],
    exhaustive=_exhaustive,
    check=_check,
    lint_examples=({"format": "e4m3"}, {"format": "bf16", "latency": "2"}, {"format": "fp32", "overflow": "inf"}),
))
