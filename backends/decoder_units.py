"""The decoder block's units in Verilator, for :class:`~lutforge.backends.verilator.SimBackend`:
one batch-harness job per call (:mod:`lutforge.program.backend` lists the calls), each unit built
once per parameter set and cached by :class:`lutforge.sim.batch.BatchSim` like the cores.

The attention call is two jobs. The KV cache writer (:class:`lutforge.hdl.kv_cache_writer.
KVCacheWriter`) writes every cached token of every key/value head into zeroed memory images, each
head's cache at its own base (the layout of :func:`lutforge.golden.attention.cache_words`); the
attention unit then reads them, every head and query in one job, one descriptor ``{keys, k_base,
v_base}`` per query and head (query t sees the keys up to its own position).
"""

from __future__ import annotations

import numpy as np

from ..golden.attention import descriptor_word
from ..golden.convert import encode
from ..golden.formats import get
from ..hdl.attention import AttentionDecode
from ..hdl.fp_binary_stream import FPBinaryStream
from ..hdl.kv_cache_writer import KVCacheWriter
from ..hdl.rmsnorm import RMSNorm
from ..hdl.rope import RoPE
from ..hdl.silu import SiLU
from ..program.backend import UnitResult
from ..sim.batch import BatchSim

__all__ = ["SimDecoderUnits"]


def _fields(values, width: int) -> np.ndarray:
    """Stream payloads of several encodings each: ``values`` (n, fields), field f at bits f·width."""
    values = np.asarray(values).astype(np.uint64)
    if values.shape[1] * width <= 64:
        return (values << (np.arange(values.shape[1], dtype=np.uint64) * np.uint64(width))).sum(1, dtype=np.uint64)
    out = np.zeros(len(values), object)
    out[:] = [sum(int(e) << (width * f) for f, e in enumerate(row)) for row in values]
    return out


def _split(payloads, width: int, count: int) -> np.ndarray:
    """Inverse of :func:`_fields`: (n, count) uint64 encodings."""
    mask = (1 << width) - 1
    return np.array([[(int(p) >> (width * f)) & mask for f in range(count)] for p in payloads], np.uint64)


class SimDecoderUnits:
    """Mixed into the sim backend, which provides ``_sims``, ``memory_latency``, ``max_cycles`` and
    ``build_seconds``/``builds_cached``."""

    def _unit(self, key, build) -> tuple[object, BatchSim]:
        if key not in self._sims:
            unit = build()
            sim = BatchSim(unit)
            self.build_seconds += sim.build_seconds
            self.builds_cached &= sim.cached
            self._sims[key] = unit, sim
        return self._sims[key]

    def _stream(self, key, build, payloads, count, **options) -> tuple[np.ndarray, int]:
        _, sim = self._unit(key, build)
        result = sim.run_streams(payloads, {"o": count}, memory_latency=self.memory_latency,
                                 max_cycles=self.max_cycles, **options)
        return np.asarray(result.outputs["o"]), int(result.cycles)

    def rmsnorm(self, x, fmt, *, eps: float, seed_bits: int = 7) -> UnitResult:
        fmt, x = get(fmt), np.asarray(x)
        k = x.shape[-1]

        def build():
            return RMSNorm(fmt, k, encode(np.ones(k), fmt), eps=eps, seed_bits=seed_bits)
        out, cycles = self._stream(("rmsnorm", fmt.name, k, eps, seed_bits), build,
                                   {"i": x.astype(np.uint64).ravel()}, x.size)
        return UnitResult(out.astype(fmt.dtype).reshape(x.shape), cycles)

    def binary(self, op: str, a, b, fmt) -> UnitResult:
        fmt, a, b = get(fmt), np.asarray(a), np.asarray(b)
        out, cycles = self._stream(("fp_stream", fmt.name, op), lambda: FPBinaryStream(fmt, op),
                                   {"i": _fields(np.stack([a.ravel(), b.ravel()], 1), fmt.width)}, a.size)
        return UnitResult(out.astype(fmt.dtype).reshape(a.shape), cycles)

    def silu(self, x, fmt, *, seed_bits: int = 7) -> UnitResult:
        fmt, x = get(fmt), np.asarray(x)
        out, cycles = self._stream(("silu", fmt.name, seed_bits), lambda: SiLU(fmt, seed_bits=seed_bits),
                                   {"i": x.astype(np.uint64).ravel()}, x.size)
        return UnitResult(out.astype(fmt.dtype).reshape(x.shape), cycles)

    def rope(self, x, cos, sin, fmt) -> UnitResult:
        fmt, x = get(fmt), np.asarray(x)
        half = x.shape[-1] // 2
        pairs = np.stack([x[:, :half].ravel(), x[:, half:].ravel(), np.asarray(cos).ravel(),
                          np.asarray(sin).ravel()], 1)
        out, cycles = self._stream(("rope", fmt.name), lambda: RoPE(fmt), {"i": _fields(pairs, fmt.width)},
                                   len(pairs))
        y = _split(out, fmt.width, 2).reshape(x.shape[0], half, 2)
        return UnitResult(np.concatenate([y[..., 0], y[..., 1]], 1).astype(fmt.dtype), cycles)

    def attention(self, q, k, v, fmt, *, acc, mul: str, offset, lanes: int, seed_bits: int = 7) -> UnitResult:
        fmt, q, k, v = get(fmt), np.asarray(q), np.asarray(k), np.asarray(v)
        heads, t, d = q.shape
        kv_heads, s, _ = k.shape
        max_keys = self.decoder_max_keys

        def build():
            return AttentionDecode(fmt, d, max_keys, acc=acc, mul=mul, offset=offset, lanes=lanes,
                                   seed_bits=seed_bits)
        unit, sim = self._unit(("attention", fmt.name, get(acc).name, d, max_keys, mul, offset, lanes, seed_bits),
                               build)
        k_image, v_image, k_bases, v_bases, write_cycles = self._write_cache(k, v, t, fmt, lanes, unit.addr_width)
        group = heads // kv_heads
        descs = [descriptor_word(s - t + j + 1, k_bases[h // group], v_bases[h // group], unit.addr_width)
                 for h in range(heads) for j in range(t)]
        q_beats = _fields(q.reshape(-1, lanes), fmt.width)
        result = sim.run_streams({"desc": np.array(descs, object), "q": q_beats}, {"o": heads * t * d},
                                 memories={"mem__k": k_image, "mem__v": v_image},
                                 memory_latency=self.memory_latency, max_cycles=self.max_cycles)
        if result.final["error"]:
            raise RuntimeError(f"The attention unit refused a descriptor ({s} cached keys, max_keys {max_keys}); "
                               f"build it with decoder.max_keys >= {s}.")
        out = np.asarray(result.outputs["o"]).astype(fmt.dtype)
        return UnitResult(out.reshape(heads, t, d), write_cycles + int(result.cycles))

    def _write_cache(self, k, v, new: int, fmt, lanes: int, addr_width: int):
        """Every token of every key/value head (k, v: (Hkv, S, D)) through the KV cache writer into
        zeroed images: the S - ``new`` tokens cached before this call in one job (they only rebuild
        what the accelerator's memory already holds, so their cycles are not counted), the ``new``
        ones in another. Returns the images, each head's key and value bases, and the second job's
        cycles."""
        kv_heads, s, d = k.shape
        _, sim = self._unit(("kv_cache_writer", fmt.name, d, lanes, addr_width),
                            lambda: KVCacheWriter(fmt, d, lanes=lanes, addr_width=addr_width))
        k_words, v_words = s * d // lanes, -(-s // lanes) * d  # per head
        k_bases, v_bases = [h * k_words for h in range(kv_heads)], [h * v_words for h in range(kv_heads)]
        word = fmt.width * lanes
        images = {"mem__k__w": [0] * (kv_heads * k_words), "mem__v__w": [0] * (kv_heads * v_words)}
        cycles = 0
        for tokens in (range(s - new), range(s - new, s)):
            if not len(tokens):
                continue
            descs = [descriptor_word(j + 1, k_bases[h], v_bases[h], addr_width) for h in range(kv_heads) for j in tokens]
            result = sim.run_streams(
                {"desc": np.array(descs, object), "k": _fields(k[:, tokens].reshape(-1, lanes), fmt.width),
                 "v": v[:, tokens].astype(np.uint64).ravel()},
                {"mem__k__w": kv_heads * len(tokens) * d // lanes, "mem__v__w": kv_heads * len(tokens) * d},
                max_cycles=self.max_cycles)
            cycles = int(result.cycles)
            for stream, image in images.items():
                for payload in result.outputs[stream]:
                    payload = int(payload)
                    addr, data = payload & ((1 << addr_width) - 1), (payload >> addr_width) & ((1 << word) - 1)
                    mask = payload >> (addr_width + word)
                    keep = sum(((1 << fmt.width) - 1) << (fmt.width * n) for n in range(lanes) if mask >> n & 1)
                    image[addr] = (image[addr] & ~keep) | (data & keep)
        k_image, v_image = (np.array(images[n], np.uint64 if word <= 64 else object) for n in images)
        return k_image, v_image, k_bases, v_bases, cycles
