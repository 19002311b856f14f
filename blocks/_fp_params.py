"""Parameters, vectors and policy handling shared by the FP blocks of the catalogue."""

import numpy as np

from ..golden import formats
from .fp_vectors import random_operands
from . import LATENCY, Param

# Signed formats with a mantissa: every format the FP RTL takes.
FP_FORMATS = tuple(n for n, f in formats.PRESETS.items() if f.signed and f.has_zero)


def fp_params(default_format: str = "e4m3") -> dict:
    return {
        "format": Param(default_format, "element format", choices=FP_FORMATS),
        "latency": LATENCY,
        "rounding": Param("rne", "rounding of the result", choices=("rne", "truncate")),
        "overflow": Param("default", "overflow: 'inf' (Inf, or NaN in e4m3), 'saturate', or the "
                          "format's default", choices=("default", "inf", "saturate")),
        "subnormals": Param("keep", "subnormal inputs and results", choices=("keep", "flush")),
    }


def policy(params) -> dict:
    return {"rounding": params["rounding"], "subnormals": params["subnormals"],
            "overflow": None if params["overflow"] == "default" else params["overflow"]}


def operand_vectors(names: str, width_of: str = "format"):
    def vectors(params, rng, count):
        arrays = random_operands(params[width_of], rng, count, arity=len(names))
        return dict(zip(names, arrays))
    return vectors


def exhaustive_operands(names: str, width_of: str = "format"):
    def exhaustive(params):
        width = formats.get(params[width_of]).width
        if len(names) * width > 20:
            return None
        codes = np.arange(1 << width, dtype=np.uint64)
        return dict(zip(names, (g.ravel() for g in np.meshgrid(*[codes] * len(names), indexing="ij"))))
    return exhaustive
