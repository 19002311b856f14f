"""Format conversion in the block catalogue."""

import numpy as np

from ..golden import formats
from ..golden.convert import convert
from . import Block, Param, register
from ._fp_params import FP_FORMATS, exhaustive_operands, fp_params, operand_vectors, policy


def _params():
    params = fp_params("e4m3")
    return {"src": Param("fp32", "source format", choices=FP_FORMATS), **params}


def _build(params):
    from ..hdl.fp_convert import FPConvert
    return FPConvert(params["src"], params["format"], latency=params["latency"], **policy(params))


def _vectors(params, rng, count):
    src = formats.get(params["src"])
    a = operand_vectors("a", "src")(params, rng, count)["a"]
    if not formats.get(params["format"]).has_nan:
        # NaN has no encoding in fp6/fp4: the golden conversion refuses it, so it is not a vector.
        a = np.where(src.is_nan(a), a & np.uint64(src.sign_mask), a)
    return {"a": a}


def _exhaustive(params):
    every = exhaustive_operands("a", "src")(params)
    if every is not None and not formats.get(params["format"]).has_nan:
        src = formats.get(params["src"])
        every = {"a": every["a"][~src.is_nan(every["a"])]}
    return every


def _golden(params, inputs):
    src = formats.get(params["src"])
    return {"r": convert(inputs["a"].astype(src.dtype), src, params["format"], **policy(params))}


register(Block(
    name="fp_convert",
    summary="Conversion between FP formats (src → format) with one rounding.",
    build=_build,
    params=_params(),
    vectors=_vectors,
    golden=_golden,
    latency=lambda params: params["latency"],
    exhaustive=_exhaustive,
    lint_examples=({"src": "fp32", "format": "e4m3"}, {"src": "bf16", "format": "e2m1", "latency": "1"},
                   {"src": "e5m2", "format": "fp32"}, {"src": "fp32", "format": "bf16", "latency": "2"}),
))
