"""The decoder block's function units in the block catalogue: reciprocal, reciprocal square root
and exponential (the norm, softmax and SiLU build on them), the SiLU, RMSNorm, softmax and RoPE stream units, and the attention head with its KV cache. Exhaustive
for 16-bit formats, random plus corner encodings for fp32."""

import numpy as np

from ..golden import fp_funcs
from ..golden.formats import PRESETS, get
from . import LATENCY, Block, Param, integer, register
from ._fp_params import exhaustive_operands
from .fp_vectors import corner_encodings, random_operands

# Formats with IEEE specials and 1 to 23 mantissa bits (golden.fp_funcs.check_function_format).
FORMATS = tuple(n for n, f in PRESETS.items() if f.specials == "ieee" and f.signed and 1 <= f.man_bits <= 23)


def _params():
    return {"format": Param("bf16", "element format", choices=FORMATS),
            "seed_bits": integer(7, "seed ROM address bits (2^seed_bits entries)", 1, 12),
            "latency": LATENCY}


def _vectors(params, rng, count):
    fmt = get(params["format"])
    a = np.concatenate([corner_encodings(fmt), random_operands(fmt, rng, count, arity=1)[0]])[:count]
    return {"a": a}


def _register(name, summary, unit, golden, steps_per_iteration, steps_of):
    def build(params):
        from ..hdl import fp_funcs as hdl
        return getattr(hdl, unit)(params["format"], seed_bits=params["seed_bits"], latency=params["latency"])

    def latency(params):
        return steps_per_iteration * steps_of(get(params["format"]), params["seed_bits"]) * params["latency"]

    register(Block(
        name=name, summary=summary, build=build, params=_params(), vectors=_vectors,
        golden=lambda params, inputs: {"r": golden(inputs["a"].astype(get(params["format"]).dtype),
                                                   params["format"], seed_bits=params["seed_bits"])},
        latency=latency, exhaustive=exhaustive_operands("a"),
        lint_examples=({}, {"format": "fp32", "latency": "2"}, {"format": "fp16", "seed_bits": "4"}),
    ))


_register("fp_reciprocal", "1/a: seed ROM and FMA Newton steps (golden.fp_funcs.reciprocal).", "FPReciprocal",
          fp_funcs.reciprocal, 2, fp_funcs.reciprocal_steps)
_register("fp_rsqrt", "1/sqrt(a): seed ROM and FMA Newton steps (golden.fp_funcs.rsqrt).", "FPRsqrt",
          fp_funcs.rsqrt, 3, fp_funcs.rsqrt_steps)


def _exp_params():
    return {"format": Param("bf16", "element format", choices=FORMATS), "latency": LATENCY}


def _build_exp(params):
    from ..hdl.fp_funcs import FPExp
    return FPExp(params["format"], latency=params["latency"])


register(Block(
    name="fp_exp", summary="e^a: range reduction and a Horner chain of FMAs (golden.fp_funcs.exp).",
    build=_build_exp, params=_exp_params(), vectors=_vectors,
    golden=lambda params, inputs: {"r": fp_funcs.exp(inputs["a"].astype(get(params["format"]).dtype),
                                                     params["format"])},
    latency=lambda params: (2 + fp_funcs.exp_degree(get(params["format"]))) * params["latency"],
    exhaustive=exhaustive_operands("a"),
    lint_examples=({}, {"format": "fp32", "latency": "1"}),
))


def _build_silu(params):
    from ..hdl.silu import SiLU
    return SiLU(params["format"], seed_bits=params["seed_bits"], latency=params["latency"])


def _silu_golden(params, inputs):
    from ..golden.silu import silu
    return {"o": silu(np.asarray(inputs["i"]).astype(get(params["format"]).dtype), params["format"],
                      seed_bits=params["seed_bits"]).astype(np.uint64)}


register(Block(
    name="silu", summary="SiLU x·sigmoid(x) (golden.silu): exp, add, reciprocal, multiply (streams i -> o).",
    build=_build_silu, params=_params(),
    vectors=lambda params, rng, count: {"i": _vectors(params, rng, count)["a"]},
    golden=_silu_golden, streams=True,
    exhaustive=lambda params: {"i": exhaustive_operands("a")(params)["a"]}
    if get(params["format"]).width <= 16 else None,
    lint_examples=({}, {"format": "fp32", "latency": "1"}),
))


def _every_row(length: str):
    """Every row of ``params[length]`` elements when that is at most 16 bits of input (two 8-bit
    elements): the norm's and softmax's whole input space at their smallest size."""
    def exhaustive(params):
        width, n = get(params["format"]).width, params[length]
        if n * width > 16:
            return None
        codes = np.arange(1 << width, dtype=np.uint64)
        return {"i": np.stack([g.ravel() for g in np.meshgrid(*[codes] * n, indexing="ij")], -1).ravel()}
    return exhaustive


def _gains(params) -> np.ndarray:
    """The block's seeded gains (what a model's norm weights look like: about 1 ± 0.3)."""
    from ..golden.convert import encode
    rng = np.random.default_rng(params["k"])
    return encode(rng.normal(1.0, 0.3, params["k"]), params["format"]).astype(np.uint64)


def _rmsnorm_params():
    return {"format": Param("fp32", "element format", choices=FORMATS),
            "k": integer(64, "elements per row (SmolLM2: 576; a QK-norm head: 64 or 128)", 2, 4096),
            "eps": Param("1e-05", "epsilon under the square root", choices=("1e-05", "1e-06")),
            "seed_bits": integer(7, "rsqrt seed ROM address bits", 1, 12),
            "rows": integer(8, "rows drawn by the vector generator", 1, 1024, sim_only=True)}


def _rmsnorm_vectors(params, rng, count):
    fmt = get(params["format"])
    rows = max(1, min(params["rows"], count // params["k"] or 1))
    # Rows of very different scales, as residual streams are (0.1 to 10 in fp16, whose squares overflow sooner).
    spread = 2.3 if fmt.name == "fp16" else 7
    x = rng.normal(size=(rows, params["k"])) * np.exp(rng.uniform(-spread, spread, (rows, 1)))
    from ..golden.convert import encode
    return {"i": encode(x, fmt).astype(np.uint64).ravel()}


def _rmsnorm_golden(params, inputs):
    from ..golden.rmsnorm import rmsnorm
    fmt = get(params["format"])
    x = np.asarray(inputs["i"]).astype(fmt.dtype).reshape(-1, params["k"])
    return {"o": rmsnorm(x, _gains(params), fmt, eps=float(params["eps"]),
                         seed_bits=params["seed_bits"]).astype(np.uint64).ravel()}


def _build_rmsnorm(params):
    from ..hdl.rmsnorm import RMSNorm
    return RMSNorm(params["format"], params["k"], _gains(params), eps=float(params["eps"]),
                   seed_bits=params["seed_bits"])


register(Block(
    name="rmsnorm", summary="RMSNorm / QK-norm over rows of K elements (golden.rmsnorm), seeded gains in ROM "
                            "(streams i -> o).",
    build=_build_rmsnorm, params=_rmsnorm_params(), vectors=_rmsnorm_vectors, golden=_rmsnorm_golden,
    streams=True, exhaustive=_every_row("k"), lint_examples=({}, {"format": "bf16", "k": "8"}),
))


def _softmax_params():
    return {"format": Param("fp32", "element format", choices=FORMATS),
            "n": integer(32, "scores per row (keys visible to one query)", 2, 4096),
            "seed_bits": integer(7, "reciprocal seed ROM address bits", 1, 12),
            "rows": integer(8, "rows drawn by the vector generator", 1, 1024, sim_only=True)}


def _softmax_vectors(params, rng, count):
    from ..golden.convert import encode
    fmt, n = get(params["format"]), params["n"]
    rows = max(1, min(params["rows"], count // n or 1))
    s = rng.normal(size=(rows, n)) * rng.uniform(0.5, 8, (rows, 1))
    # Causal masks: each row sees its first 1 to n keys, the rest are -Inf.
    visible = np.arange(n)[None, :] < rng.integers(1, n + 1, (rows, 1))
    s = np.where(visible, s, -np.inf)
    # The comparator's corners first: -0 against +0, NaN before the maximum, ties, all -Inf.
    corners = np.full((4, n), -np.inf)
    corners[0, :3] = [-0.0, 0.0, -1.0]
    corners[1, :4] = [np.nan, 2.0, 2.0, 1.0]
    corners[3, :4] = [1.0, np.nan, 3.0, 3.0]
    return {"i": encode(np.concatenate([corners, s])[:max(rows, 4)], fmt).astype(np.uint64).ravel()}


def _softmax_golden(params, inputs):
    from ..golden.softmax import softmax
    fmt = get(params["format"])
    s = np.asarray(inputs["i"]).astype(fmt.dtype).reshape(-1, params["n"])
    return {"o": softmax(s, fmt, seed_bits=params["seed_bits"]).astype(np.uint64).ravel()}


def _build_softmax(params):
    from ..hdl.softmax import Softmax
    return Softmax(params["format"], params["n"], seed_bits=params["seed_bits"])


register(Block(
    name="softmax", summary="Softmax over rows of n scores, -Inf masked (golden.softmax) (streams i -> o).",
    build=_build_softmax, params=_softmax_params(), vectors=_softmax_vectors, golden=_softmax_golden,
    streams=True, exhaustive=_every_row("n"), lint_examples=({}, {"format": "bf16", "n": "5"}),
))


def _rope_params():
    return {"format": Param("bf16", "element format", choices=FORMATS), "latency": LATENCY,
            "dim": integer(64, "head dimension D the tables are drawn for", 2, 256, sim_only=True)}


def _rope_vectors(params, rng, count):
    from ..golden.convert import encode
    from ..golden.rope import rope_tables
    fmt, half = get(params["format"]), params["dim"] // 2
    positions = rng.integers(0, 8192, max(1, count // half))
    cos, sin = rope_tables(positions, 2 * half, 10000.0, fmt)
    x = encode(rng.normal(size=(len(positions), 2 * half)) * 4, fmt)
    w = fmt.width
    fields = [x[:, :half], x[:, half:], cos, sin]
    payload = np.zeros(len(positions) * half, object)
    payload[:] = [sum(int(f.ravel()[j]) << (w * k) for k, f in enumerate(fields)) for j in range(len(positions) * half)]
    return {"i": payload}


def _rope_golden(params, inputs):
    from ..golden.rope import rope
    fmt = get(params["format"])
    w, mask = fmt.width, (1 << fmt.width) - 1
    beats = [int(p) for p in inputs["i"]]
    x1, x2, c, s = (np.array([(b >> (w * k)) & mask for b in beats], np.uint64).astype(fmt.dtype) for k in range(4))
    # Each beat is its own position: a one-pair head (D = 2) per beat gives the same arithmetic.
    y = rope(np.stack([x1, x2], -1), c[:, None], s[:, None], fmt)
    out = np.zeros(len(beats), object)
    out[:] = [int(y1) | (int(y2) << w) for y1, y2 in y.astype(np.uint64)]
    return {"o": out}


def _build_rope(params):
    from ..hdl.rope import RoPE
    return RoPE(params["format"], latency=params["latency"])


register(Block(
    name="rope", summary="RoPE rotate-half pairs with their cos/sin table entries (golden.rope) (streams i -> o).",
    build=_build_rope, params=_rope_params(), vectors=_rope_vectors, golden=_rope_golden, streams=True,
    lint_examples=({}, {"format": "fp32", "latency": "1"}),
))


def _attention_params():
    return {"format": Param("bf16", "data format of q, k, v and the outputs", choices=FORMATS),
            "acc": Param("fp32", "the unit's accumulation format (holds every data value exactly)",
                         choices=FORMATS),
            "d": integer(16, "head dimension D", 2, 256),
            "max_keys": integer(16, "most cached tokens a query sees (the score buffer's depth)", 2, 4096),
            "lanes": integer(1, "products per beat (divides d)", 1, 16),
            "mul": Param("exact", "the products of q·k and A·V: exact in acc, or L-Mul in the data format at "
                                  "the paper's offset", choices=("exact", "lmul")),
            "queries": integer(4, "queries drawn by the vector generator (the cache's last tokens)", 1, 64,
                               sim_only=True)}


def _attention_check(params):
    from ..golden.lmul_dot import check_acc_format
    from ..support.errors import UsageError
    try:
        check_acc_format(get(params["format"]), get(params["acc"]))
    except ValueError as error:
        raise UsageError(f"Block 'attention' parameters format={params['format']}, acc={params['acc']}: "
                         f"{error}") from None
    if params["d"] % params["lanes"]:
        raise UsageError(f"Block 'attention' parameter lanes={params['lanes']} does not divide d={params['d']}; "
                         f"choose lanes dividing the head dimension.")


def _attention_vectors(params, rng, count):
    """A prefill of ``queries`` tokens as that many descriptors over a cache of ``max_keys`` tokens
    at bases past zero (garbage before them), plus one refused descriptor (no keys) that must
    change nothing."""
    from ..golden.attention import cache_words, descriptor_word
    from ..golden.convert import encode
    fmt, d, s, lanes = get(params["format"]), params["d"], params["max_keys"], params["lanes"]
    t = min(params["queries"], s)
    k, v = (encode(rng.normal(size=(s, d)) * 2, fmt).astype(np.uint64) for _ in range(2))
    q = encode(rng.normal(size=(t, d)) * 2, fmt).astype(np.uint64)
    k_words, v_words = cache_words(k, v, fmt, lanes)
    junk = [int(x) for x in rng.integers(0, 1 << min(fmt.width * lanes, 63), GAP)]
    descs = [descriptor_word(s - t + n + 1, GAP, GAP) for n in range(t)]
    descs.insert(1, descriptor_word(0, GAP, GAP))
    q_beats = [sum(int(e) << (fmt.width * lane) for lane, e in enumerate(row)) for row in q.reshape(-1, lanes)]
    return {"desc": np.array(descs, dtype=object), "q": np.array(q_beats, dtype=object),
            "mem__k": np.array(junk + k_words, dtype=object), "mem__v": np.array(junk + v_words, dtype=object)}


# Words before the cache in the memory images: the unit must read from its bases.
GAP = 3


def _attention_golden(params, inputs):
    from ..golden.attention import attention
    fmt, d, s, lanes = get(params["format"]), params["d"], params["max_keys"], params["lanes"]

    def elements(words):
        mask = (1 << fmt.width) - 1
        return np.array([[(int(w) >> (fmt.width * lane)) & mask for lane in range(lanes)] for w in words],
                        np.uint64).ravel()

    q = elements(inputs["q"]).astype(fmt.dtype).reshape(-1, d)
    k = elements(inputs["mem__k"][GAP:]).astype(fmt.dtype).reshape(s, d)
    v_blocks = elements(inputs["mem__v"][GAP:]).reshape(-1, d, lanes)
    v = v_blocks.transpose(0, 2, 1).reshape(-1, d)[:s].astype(fmt.dtype)
    return {"o": attention(q, k, v, fmt, acc=params["acc"], mul=params["mul"], lanes=lanes).astype(np.uint64).ravel()}


def _build_attention(params):
    from ..hdl.attention import AttentionDecode
    return AttentionDecode(params["format"], params["d"], params["max_keys"], acc=params["acc"], mul=params["mul"],
                           lanes=params["lanes"])


register(Block(
    name="attention", summary="One attention head over its KV cache, a query at a time (golden.attention, "
                              "exact or L-Mul products), its KV cache in memory (streams desc, q -> o; memory reads mem.k, mem.v).",
    build=_build_attention, params=_attention_params(), vectors=_attention_vectors, golden=_attention_golden,
    streams=True, memories=("mem__k", "mem__v"), check=_attention_check, lint_examples=({}, {"format": "fp32", "acc": "fp32", "d": "4"}, {"mul": "lmul", "lanes": "4"}),
))


def _writer_params():
    return {"format": Param("bf16", "data format of the keys and values", choices=FORMATS),
            "d": integer(16, "head dimension D", 2, 256),
            "lanes": integer(1, "elements per memory word (the attention unit's lanes; divides d)", 1, 16),
            "tokens": integer(6, "tokens appended by the vector generator", 1, 256, sim_only=True)}


def _writer_check(params):
    from ..support.errors import UsageError
    if params["d"] % params["lanes"]:
        raise UsageError(f"Block 'kv_cache_writer' parameter lanes={params['lanes']} does not divide "
                         f"d={params['d']}; choose lanes dividing the head dimension.")


def _writer_vectors(params, rng, count):
    """Tokens appended at positions 1, 2, ... with a refused descriptor (no keys) after the first."""
    from ..golden.attention import descriptor_word
    fmt, d, lanes, t = get(params["format"]), params["d"], params["lanes"], params["tokens"]
    k, v = (rng.integers(0, 1 << fmt.width, (t, d), dtype=np.uint64) for _ in range(2))
    descs = [descriptor_word(j + 2, GAP, 2 * GAP) for j in range(t)]
    descs.insert(1, descriptor_word(0, GAP, 2 * GAP))
    k_beats = [sum(int(e) << (fmt.width * lane) for lane, e in enumerate(row)) for row in k.reshape(-1, lanes)]
    return {"desc": np.array(descs, dtype=object), "k": np.array(k_beats, dtype=object), "v": v.ravel()}


def _writer_golden(params, inputs):
    from ..golden.attention import cache_writes
    fmt, d, lanes = get(params["format"]), params["d"], params["lanes"]
    aw, dw = 32, fmt.width * lanes
    mask = (1 << fmt.width) - 1
    k = np.array([[(int(w) >> (fmt.width * n)) & mask for n in range(lanes)] for w in inputs["k"]]).reshape(-1, d)
    v = np.asarray(inputs["v"], np.uint64).reshape(-1, d)
    out = {"mem__k__w": [], "mem__v__w": []}
    for j in range(len(k)):
        for name, writes in zip(out, cache_writes(k[j], v[j], j + 2, fmt, lanes, GAP, 2 * GAP)):
            out[name] += [addr | data << aw | m << (aw + dw) for addr, data, m in writes]
    return {name: np.array(words, dtype=object) for name, words in out.items()}


def _build_writer(params):
    from ..hdl.kv_cache_writer import KVCacheWriter
    return KVCacheWriter(params["format"], params["d"], lanes=params["lanes"])


register(Block(
    name="kv_cache_writer", summary="Appends a token's keys and values to the KV cache in memory, in the attention "
                                    "unit's layout (streams desc, k, v -> write streams mem.k.w, mem.v.w).",
    build=_build_writer, params=_writer_params(), vectors=_writer_vectors, golden=_writer_golden,
    streams=True, check=_writer_check, lint_examples=({}, {"lanes": "4"}),
))


def _pair_payloads(a, b, fmt) -> np.ndarray:
    return np.asarray(a).astype(np.uint64) | (np.asarray(b).astype(np.uint64) << np.uint64(fmt.width))


def _binary_vectors(params, rng, count):
    fmt = get(params["format"])
    corners = corner_encodings(fmt)
    a, b = (g.ravel() for g in np.meshgrid(corners, corners, indexing="ij"))
    ra, rb = random_operands(fmt, rng, count, arity=2)
    return {"i": _pair_payloads(np.concatenate([a, ra]), np.concatenate([b, rb]), fmt)}


def _binary_golden(params, inputs):
    from ..golden import fp
    fmt = get(params["format"])
    i = np.asarray(inputs["i"]).astype(np.uint64)
    mask = np.uint64((1 << fmt.width) - 1)
    a, b = (i & mask).astype(fmt.dtype), ((i >> np.uint64(fmt.width)) & mask).astype(fmt.dtype)
    return {"o": getattr(fp, params["op"])(a, b, fmt).astype(np.uint64)}


def _build_binary(params):
    from ..hdl.fp_binary_stream import FPBinaryStream
    return FPBinaryStream(params["format"], params["op"], latency=params["latency"])


def _binary_exhaustive(params):
    pairs = exhaustive_operands("ab")(params)
    return None if pairs is None else {"i": _pair_payloads(pairs["a"], pairs["b"], get(params["format"]))}


register(Block(
    name="fp_stream", summary="Elementwise a + b (residual adds) or a · b (norm gains, SiLU(gate) · up) on a stream of "
                              "operand pairs (golden.fp.add / mul) (streams i -> o).",
    build=_build_binary,
    params={"format": Param("bf16", "element format", choices=FORMATS),
            "op": Param("add", "the operation", choices=("add", "mul")), "latency": LATENCY},
    vectors=_binary_vectors, golden=_binary_golden, streams=True, exhaustive=_binary_exhaustive,
    lint_examples=({}, {"op": "mul", "format": "fp32", "latency": "2"}),
))
