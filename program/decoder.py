"""Whole decoder blocks on the accelerator (``blocks: hardware``): every operation of a Llama block
runs on a hardware unit through one backend, in the number formats of a :class:`DecoderSpec`; the
host keeps only the embedding lookup and the LM head's product.

One block, for T new tokens at positions ``start .. start + T - 1`` (``h``: the residual stream,
encodings of ``norm_format``)::

    x  = rmsnorm(h) · attn_norm              rmsnorm unit (unit gains), then the mul unit
    q, k, v = linears(x)                     GEMV cores (the Program); into attention_format
    q, k = qk_norm(q), qk_norm(k)            Qwen3 only: rmsnorm and mul units over each head
                                             (in norm_format), then into attention_format
    q, k = rope(q), rope(k)                  RoPE unit, tables rounded into attention_format
    cache[k, v] += k, v                      the KV cache in the accelerator's memory
    o  = attention(q, cache)                 attention unit, one descriptor per query and head
    h  = h + attn.o(o)                       GEMV core; the add unit in norm_format
    x  = rmsnorm(h) · mlp_norm
    g  = silu(mlp.gate(x)) · mlp.up(x)       SiLU and mul units in mlp_format
    h  = h + mlp.down(g)

then ``logits = (rmsnorm(h) · norm) @ lm_head.T`` with the product on the host in fp32. A linear
the Program does not hold runs in fp32 on the host, as with ``blocks: host``. Between a core and a
unit the values cross the host's float64 dequantization (:class:`~lutforge.program.host.HostDriver`)
and are rounded to nearest even into the unit's format (:func:`lutforge.golden.convert.encode`).

Every unit call goes through the backend (:class:`~lutforge.program.backend.UnitResult`), and its
outputs enter the driver's ``accumulators`` hash with the cores', so two backends that agree on
that hash agree on every unit's outputs bit for bit.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..golden.attention import MULS
from ..golden.convert import decode, encode
from ..golden.formats import get
from ..golden.fp_funcs import check_function_format
from ..golden.lmul_dot import check_acc_format
from ..golden.rope import rope_tables
from .host import HostDriver

__all__ = ["DecoderSpec", "DecoderRunner"]


@dataclass(frozen=True)
class DecoderSpec:
    """The number formats and build sizes of the decoder block's units."""
    norm_format: str = "fp32"       # the residual stream: RMSNorm, its gains, the residual adds
    attention_format: str = "bf16"  # RoPE, q, k, v (the KV cache) and attention's outputs
    attention_acc: str = "fp32"     # the attention unit's scores, softmax and sums
    attention_mul: str = "exact"    # q·k and A·V: exact in attention_acc, or L-Mul in attention_format
    attention_offset: int | None = None  # L-Mul's offset (None: the paper's)
    attention_lanes: int = 1        # products per beat of the attention unit
    mlp_format: str = "bf16"        # SiLU and its product with up
    max_keys: int = 256             # the attention unit's score buffer: the longest context it serves
    seed_bits: int = 7              # the reciprocal / rsqrt seed tables

    def check(self, head_dim: int | None = None) -> "DecoderSpec":
        """Raise ValueError naming the first value the units cannot take (and the fix)."""
        for key in ("norm_format", "attention_format", "attention_acc", "mlp_format"):
            try:
                check_function_format(getattr(self, key))
            except (ValueError, KeyError) as error:
                raise ValueError(f"decoder.{key} = {getattr(self, key)!r}: {error}") from None
        try:
            check_acc_format(get(self.attention_format), get(self.attention_acc))
        except ValueError as error:
            raise ValueError(f"decoder.attention_acc = {self.attention_acc!r}: {error}") from None
        if self.attention_mul not in MULS:
            raise ValueError(f"decoder.attention_mul = {self.attention_mul!r} is not one of {', '.join(MULS)}; "
                             f"choose one of them.")
        if self.attention_offset is not None and (isinstance(self.attention_offset, bool)
                                                  or not isinstance(self.attention_offset, int)):
            raise ValueError(f"decoder.attention_offset = {self.attention_offset!r} is not an integer; give L-Mul's "
                             f"offset as an integer (the paper's for bf16 is 16248) or leave it out.")
        if self.attention_offset is not None and self.attention_mul != "lmul":
            raise ValueError(f"decoder.attention_offset = {self.attention_offset} is given with exact products; "
                             f"set attention_mul: lmul or remove the offset.")
        for key, low, high in (("attention_lanes", 1, 64), ("max_keys", 2, 65535), ("seed_bits", 1, 12)):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
                raise ValueError(f"decoder.{key} = {value!r} is outside {low} to {high}; give an integer in range.")
        if head_dim is not None and head_dim % self.attention_lanes:
            raise ValueError(f"decoder.attention_lanes = {self.attention_lanes} does not divide the head dimension "
                             f"{head_dim}; choose lanes dividing it.")
        return self


class DecoderRunner:
    """Runs a model's decoder blocks on ``driver``'s backend (module docstring), keeping the KV
    cache of the tokens seen so far; :meth:`forward` takes the new tokens, :meth:`reset` forgets."""

    def __init__(self, ir, driver: HostDriver, spec: DecoderSpec):
        self.cfg, self.driver, self.backend = ir.config, driver, driver.backend
        self.spec = spec.check(self.cfg.head_dim)
        self._w = ir.weights
        self.norm_fmt, self.att_fmt, self.mlp_fmt = (get(f) for f in (spec.norm_format, spec.attention_format,
                                                                        spec.mlp_format))
        self.gains = {name: encode(np.asarray(w, np.float64), self.norm_fmt)
                      for name, w in ir.weights.items() if name.endswith("norm")}
        self.reset()

    def reset(self) -> None:
        self.keys: dict[int, np.ndarray] = {}    # block -> (kv heads, S, D) encodings
        self.values: dict[int, np.ndarray] = {}
        self.length = 0
        self.steps: list[tuple[int, int]] = []  # (new tokens, cached tokens before them) of each forward

    # -- one unit call each ---------------------------------------------------------------------

    def _record(self, result):
        self.driver.record_unit(result)
        return result.out

    def _norm(self, h, gain_name):
        fmt = self.norm_fmt
        y = self._record(self.backend.rmsnorm(h, fmt, eps=self.cfg.rms_eps, seed_bits=self.spec.seed_bits))
        return self._record(self.backend.binary("mul", y, np.broadcast_to(self.gains[gain_name], y.shape), fmt))

    def _linear(self, name, x_enc, fmt, out_fmt):
        """Linear ``name`` on its core (or fp32 on the host) on encodings of ``fmt``; encodings of ``out_fmt``."""
        x = decode(x_enc, fmt)
        if name in self.driver.program.layers:
            y = self.driver.linear(name, x)
        else:
            y = x.astype(np.float32) @ np.asarray(self._w[name], np.float32).T
        return encode(np.asarray(y, np.float64), out_fmt)

    # -- the model ----------------------------------------------------------------------------

    def forward(self, tokens) -> np.ndarray:
        """fp32 logits (T, vocab) of the new ``tokens`` (ids), at positions after the cached ones."""
        cfg, spec = self.cfg, self.spec
        tokens = np.asarray(tokens, np.int64).reshape(-1)
        t, start = len(tokens), self.length
        if start + t > spec.max_keys:
            raise ValueError(f"The context reaches {start + t} tokens, more than the attention unit's "
                             f"max_keys = {spec.max_keys}; build it with decoder.max_keys >= {start + t} or "
                             f"generate fewer tokens.")
        embed = np.asarray(self._w["embed"], np.float32)
        h = encode(embed[tokens].astype(np.float64), self.norm_fmt)
        cos, sin = rope_tables(np.arange(start, start + t), cfg.head_dim, cfg.rope_theta, self.att_fmt,
                               cfg.rope_freq_factors)
        for i in range(cfg.n_layers):
            h = self._block(i, h, cos, sin)
        self.length = start + t
        self.steps.append((t, start))
        x = decode(self._norm(h, "norm"), self.norm_fmt).astype(np.float32)
        head = self._w["embed" if cfg.tied_embeddings else "lm_head"]
        return x @ np.asarray(head, np.float32).T

    def _block(self, i, h, cos, sin):
        cfg, p = self.cfg, f"layers.{i}."
        t, hd, nh, nkv = h.shape[0], cfg.head_dim, cfg.n_heads, cfg.n_kv_heads
        nf, af, mf = self.norm_fmt, self.att_fmt, self.mlp_fmt
        x = self._norm(h, p + "attn_norm")
        if cfg.qk_norm:
            q, k = (self._head_norm(self._linear(p + f"attn.{n}", x, nf, nf), p + f"attn.{n}_norm", t, heads)
                    for n, heads in (("q", nh), ("k", nkv)))
            v = self._linear(p + "attn.v", x, nf, af)
        else:
            q, k, v = (self._linear(p + name, x, nf, af) for name in ("attn.q", "attn.k", "attn.v"))
        q = self._rope(q.reshape(t, nh, hd), cos, sin)
        k = self._rope(k.reshape(t, nkv, hd), cos, sin)
        v = v.reshape(t, nkv, hd).transpose(1, 0, 2)
        if i in self.keys:
            k, v = np.concatenate([self.keys[i], k], 1), np.concatenate([self.values[i], v], 1)
        self.keys[i], self.values[i] = k, v
        o = self._record(self.backend.attention(q, k, v, af, acc=self.spec.attention_acc,
                                                mul=self.spec.attention_mul, offset=self.spec.attention_offset,
                                                lanes=self.spec.attention_lanes, seed_bits=self.spec.seed_bits))
        o = o.transpose(1, 0, 2).reshape(t, nh * hd)
        h = self._record(self.backend.binary("add", h, self._linear(p + "attn.o", o, af, nf), nf))
        x = self._norm(h, p + "mlp_norm")
        gate, up = (self._linear(p + name, x, nf, mf) for name in ("mlp.gate", "mlp.up"))
        g = self._record(self.backend.silu(gate, mf, seed_bits=self.spec.seed_bits))
        g = self._record(self.backend.binary("mul", g, up, mf))
        return self._record(self.backend.binary("add", h, self._linear(p + "mlp.down", g, mf, nf), nf))

    def _head_norm(self, x, gain_name, t, heads):
        """Qwen3's QK-norm: every head's row of ``x`` (encodings of norm_format) through the rmsnorm
        and mul units, then rounded into attention_format for RoPE."""
        rows = self._norm(x.reshape(t * heads, -1), gain_name)
        return encode(decode(rows, self.norm_fmt), self.att_fmt).reshape(t, -1)

    def _rope(self, x, cos, sin):
        """(T, heads, D) -> (heads, T, D), each row rotated by its position's tables."""
        t, heads, d = x.shape
        rows = x.transpose(1, 0, 2).reshape(heads * t, d)
        tiled = (np.tile(cos, (heads, 1)), np.tile(sin, (heads, 1)))
        return self._record(self.backend.rope(rows, *tiled, self.att_fmt)).reshape(heads, t, d)

    def greedy(self, prompt: list[int], tokens: int, progress=None) -> list[int]:
        """``tokens`` greedy tokens after ``prompt`` (ties: lowest id), from an empty cache;
        ``progress`` wraps the loop over the tokens (a progress bar)."""
        self.reset()
        out, step = [], list(prompt)
        steps = range(tokens)
        for _ in progress(steps) if progress else steps:
            logits = self.forward(step)[-1]
            out.append(int(np.argmax(logits)))
            step = [out[-1]]
        return out
