"""Floating-point adder in the block catalogue."""

from ..golden import formats, fp
from . import Block, register
from ._fp_params import exhaustive_operands, fp_params, operand_vectors, policy


def _build(params):
    from ..hdl.fp_add import FPAdder
    return FPAdder(params["format"], latency=params["latency"], **policy(params))


def _golden(params, inputs):
    dtype = formats.get(params["format"]).dtype
    return {"r": fp.add(inputs["a"].astype(dtype), inputs["b"].astype(dtype), params["format"], **policy(params))}


register(Block(
    name="fp_add",
    summary="IEEE-style floating-point adder (one rounding), any format and policy.",
    build=_build,
    params=fp_params(),
    vectors=operand_vectors("ab"),
    golden=_golden,
    latency=lambda params: params["latency"],
    exhaustive=exhaustive_operands("ab"),
    lint_examples=({"format": "e4m3"}, {"format": "bf16", "latency": "2", "subnormals": "flush"},
                   {"format": "fp32", "rounding": "truncate", "overflow": "saturate"}, {"format": "e2m1"}),
))
