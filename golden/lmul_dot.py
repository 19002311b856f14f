"""L-Mul dot products and attention scores: L-Mul products summed by a fixed adder tree.

``lmul_dot(a, b, fmt, lanes=N, acc_format=...)`` models the dot-product unit of
:mod:`lutforge.hdl.lmul_dot` operation for operation:

1. every product is ``lmul(a_i, b_i)`` in the operand format ``fmt`` (policy and offset as in
   :func:`lutforge.golden.lmul.lmul`);
2. each product is converted to the accumulation format ``acc_format`` — only formats that hold
   every value of ``fmt`` exactly are accepted (``fmt`` itself, or e.g. fp32 for e4m3/e5m2/bf16),
   so the conversion never rounds;
3. the vector is consumed ``lanes`` elements per beat; the ``lanes`` products of a beat are summed by
   an adder tree whose pairing order is fixed: each level adds neighbours ``(x0+x1), (x2+x3), …``
   and an odd element at the end of a level moves up unchanged (lanes = 4:
   ``(p0+p1)+(p2+p3)``; lanes = 3: ``(p0+p1)+p2``);
4. the beat sums are accumulated left to right, starting from the first beat's sum:
   ``acc = s0; acc = acc + s1; …``.

Every addition is :func:`lutforge.golden.fp.add` in ``acc_format`` with round-to-nearest-even,
subnormals kept and the format's default overflow (Inf in IEEE formats, NaN in e4m3), the policy the
RTL adder implements.
"""

import numpy as np

from ..support.checks import check_int
from . import fp
from .convert import convert
from .formats import Format, get
from .lmul import LMulPolicy, lmul

__all__ = ["check_acc_format", "tree_sum", "accumulate", "lmul_dot", "lmul_attention_scores"]


def check_acc_format(fmt: Format, acc: Format) -> None:
    """Refuse accumulation formats that would round (or lose specials of) the L-Mul products."""
    if acc == fmt:
        return
    if acc.man_bits > fp.MAX_MAN_BITS or not acc.signed or not acc.has_zero:
        raise ValueError(
            f"Accumulation format {acc.name!r} is not supported by the FP adder; use a signed format "
            f"with 1 to {fp.MAX_MAN_BITS} mantissa bits (e.g. fp32) or the operand format {fmt.name!r}."
        )
    exact = (acc.man_bits >= fmt.man_bits and acc.emax >= fmt.emax
             and acc.emin - acc.man_bits <= fmt.emin - fmt.man_bits)
    specials = acc.specials == "ieee" or fmt.specials == "none" or (fmt.specials == acc.specials == "fn")
    if not (exact and specials):
        raise ValueError(
            f"Accumulation format {acc.name!r} cannot hold every {fmt.name} product exactly "
            f"(mantissa {acc.man_bits} vs {fmt.man_bits} bits, exponents {acc.emin}..{acc.emax} vs "
            f"{fmt.emin}..{fmt.emax}, specials {acc.specials!r} vs {fmt.specials!r}); "
            f"accumulate in {fmt.name} itself or in a wider IEEE format such as fp32."
        )


def tree_sum(values: np.ndarray, fmt: Format) -> np.ndarray:
    """Sum the last axis with the adder tree of the module docstring (neighbours, odd one moves up)."""
    level = [values[..., i] for i in range(values.shape[-1])]
    while len(level) > 1:
        nxt = [fp.add(level[i], level[i + 1], fmt) for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            nxt.append(level[-1])
        level = nxt
    return np.asarray(level[0]).astype(fmt.dtype)


def lmul_dot(a, b, fmt: "str | Format", *, lanes: int, acc_format: "str | Format | None" = None,
             policy: "LMulPolicy | str | None" = None, offset: "int | None" = None, **overrides) -> np.ndarray:
    """Dot products over the last axis of ``a`` and ``b`` (encodings of ``fmt``, broadcast together).

    The length K of the last axis must be a multiple of ``lanes`` (K / lanes beats; nothing is
    padded). Returns encodings of ``acc_format`` (default: ``fmt``) with the leading shape.
    """
    fmt = get(fmt)
    acc = fmt if acc_format is None else get(acc_format)
    lanes = check_int("lanes", lanes, fix="a dot product takes 1 or more products per beat")
    check_acc_format(fmt, acc)
    products = lmul(a, b, fmt, policy, offset=offset, **overrides)
    if acc != fmt and products.ndim and products.shape[-1]:
        products = convert(products.astype(fmt.dtype), fmt, acc)
    return accumulate(products, acc, lanes)


def accumulate(products, acc: Format, lanes: int) -> np.ndarray:
    """Sum the last axis of ``products`` (encodings of ``acc``) as the unit does: ``lanes`` per beat
    through :func:`tree_sum`, the beat sums left to right (module docstring, steps 3 and 4)."""
    products = np.asarray(products)
    if products.ndim == 0 or products.shape[-1] == 0:
        raise ValueError("Dot products need vectors with at least one element along the last axis.")
    k = products.shape[-1]
    if k % lanes:
        raise ValueError(
            f"Vector length {k} is not a multiple of lanes={lanes}; pad the vectors with zeros to "
            f"{-(-k // lanes) * lanes} elements or choose lanes dividing {k}."
        )
    beats = products.astype(acc.dtype).reshape(products.shape[:-1] + (k // lanes, lanes))
    sums = tree_sum(beats, acc)
    total = sums[..., 0]
    for i in range(1, sums.shape[-1]):
        total = fp.add(total, sums[..., i], acc)
    return np.asarray(total).astype(acc.dtype)


def lmul_attention_scores(q, keys, fmt: "str | Format", *, lanes: int,
                          acc_format: "str | Format | None" = None, policy: "LMulPolicy | str | None" = None,
                          offset: "int | None" = None, **overrides) -> np.ndarray:
    """One score ``q · k`` per key (rows of ``keys``), each the :func:`lmul_dot` of the unit.

    ``q`` has shape (D,), ``keys`` (n_keys, D); no 1/sqrt(D) scale is applied (fold it into q).
    """
    q = np.asarray(q)
    keys = np.asarray(keys)
    if q.ndim != 1 or keys.ndim != 2 or keys.shape[1] != q.shape[0]:
        raise ValueError(
            f"Attention scores need q of shape (D,) and keys of shape (n_keys, D); got {q.shape} and "
            f"{keys.shape}."
        )
    return lmul_dot(q[None, :], keys, fmt, lanes=lanes, acc_format=acc_format, policy=policy,
                    offset=offset, **overrides)

