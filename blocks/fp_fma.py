"""Fused multiply-add in the block catalogue."""

from ..golden import formats, fp
from . import Block, register
from ._fp_params import exhaustive_operands, fp_params, operand_vectors, policy


def _build(params):
    from ..hdl.fp_fma import FPFusedMultiplyAdd
    return FPFusedMultiplyAdd(params["format"], latency=params["latency"], **policy(params))


def _golden(params, inputs):
    dtype = formats.get(params["format"]).dtype
    a, b, c = (inputs[k].astype(dtype) for k in "abc")
    return {"r": fp.fma(a, b, c, params["format"], **policy(params))}


register(Block(
    name="fp_fma",
    summary="Fused multiply-add a·b + c with one rounding, any format and policy.",
    build=_build,
    params=fp_params(),
    vectors=operand_vectors("abc"),
    golden=_golden,
    latency=lambda params: params["latency"],
    exhaustive=exhaustive_operands("abc"),
    lint_examples=({"format": "e4m3"}, {"format": "bf16", "latency": "3"},
                   {"format": "fp32", "subnormals": "flush", "overflow": "saturate"}, {"format": "e2m1"}),
))
