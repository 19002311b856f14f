"""The proof registry: the proofs lutforge runs (``lutforge prove``).

A :class:`Proof` names a gold (reference) and a gate (optimized) component and their latencies.
``proofs()`` lists every registered proof; ``fast`` ones run in ``make test``, the rest in
``make prove-all``. Blocks whose RTL is not in the tree yet are skipped, not faked.
:func:`block_proof` proves a catalogue block with any parameters: its pipelined form against the
combinational one, or the block against its plain spec RTL (:mod:`.specs`). The fault-injection
campaign over these proofs is :mod:`.campaign`.
"""

import importlib.util
from dataclasses import dataclass
from typing import Any, Callable

from ..support.errors import UsageError
from ..support.progress import progress
from .engines import prove_equivalent, prove_properties
from .pipeline import ENGINE as PIPELINE_LEMMAS
from .results import ProofResult

__all__ = ["Proof", "proofs", "run_proofs", "block_proof"]

SMALL_FORMATS = ("e4m3", "e5m2", "e3m2", "e2m3", "e2m1")
PROPERTIES = "properties"


@dataclass(frozen=True)
class Proof:
    name: str
    gold: Callable[[], Any]
    gate: Callable[[], Any]
    gold_latency: int = 0
    gate_latency: int = 0
    fast: bool = False
    engine: str = "auto"
    timeout: float = 300.0
    summary: str = ""
    assume: "str | None" = None
    cut: tuple[str, ...] = ()
    depth: "int | None" = None
    # engine "properties": ``gate`` builds one design with its own assertions (a unit and its spec,
    # :func:`.engines.prove_properties`), ``gold`` is None and ``mutant`` builds the same check
    # around a changed unit, which must fail.
    mutant: "Callable[[], Any] | None" = None

    def run(self, *, cache: bool = True, solver: str = "yices", timeout: "float | None" = None,
            engine: "str | None" = None) -> ProofResult:
        if self.engine == PROPERTIES:
            return prove_properties(self.gate(), name=self.name, depth=self.depth, solver=solver,
                                    timeout=timeout or self.timeout, cache=cache)
        return prove_equivalent(self.gold(), self.gate(), name=self.name, gold_latency=self.gold_latency,
                                gate_latency=self.gate_latency, engine=engine or self.engine, solver=solver,
                                timeout=timeout or self.timeout, assume=self.assume, cut=self.cut, cache=cache,
                                depth=self.depth)


def _have(module: str) -> bool:
    return importlib.util.find_spec(f"lutforge.hdl.{module}") is not None


def _lmul_proofs():
    from ..golden.lmul import LMulPolicy
    from ..hdl.lmul import LMulMultiplier
    from ..golden.formats import get
    from .specs import LMulSpec
    policies = {"default": None, "wrap": "wrap", "inf": LMulPolicy(overflow="inf")}
    for fmt in SMALL_FORMATS + ("bf16", "fp16", "fp32"):
        for pname, pol in policies.items():
            if pname == "inf" and not get(fmt).has_nan:
                continue  # overflow to Inf/NaN needs a format that has one
            yield Proof(f"lmul-spec-{fmt}-{pname}", lambda f=fmt, p=pol: LMulSpec(f, p),
                        lambda f=fmt, p=pol: LMulMultiplier(f, p),
                        fast=(fmt in ("e4m3", "bf16") and pname == "default"),
                        summary=f"L-Mul multiplier == plain spec RTL, {fmt}, policy {pname}")
        for latency in (1, 2, 3):
            yield Proof(f"lmul-pipe-{fmt}-L{latency}", lambda f=fmt: LMulMultiplier(f),
                        lambda f=fmt, n=latency: LMulMultiplier(f, latency=n), 0, latency,
                        fast=(fmt == "e4m3" and latency == 2),
                        summary=f"pipelined L-Mul (latency {latency}) == combinational, {fmt}")


def _fp_pipeline_proofs():
    units = []
    if _have("fp_mul"):
        from ..hdl.fp_mul import FPMultiplier
        units.append(("fpmul", FPMultiplier, (1, 2, 3)))
    if _have("fp_add"):
        from ..hdl.fp_add import FPAdder
        units.append(("fpadd", FPAdder, (1, 2, 3)))
    if _have("fp_fma"):
        from ..hdl.fp_fma import FPFusedMultiplyAdd
        units.append(("fpfma", FPFusedMultiplyAdd, (1, 3, 4)))
    for unit, cls, latencies in units:
        for fmt in SMALL_FORMATS + ("bf16", "fp16"):
            # k-induction must relate each register to earlier inputs: on the wide multipliers and on
            # every fused multiply-add it runs past its limit, and on the wide adders it takes about
            # 100 s. Those plain pipelines are proven by the pipeline lemmas instead (balanced
            # structure, then registers transparent == combinational), in seconds.
            lemmas = unit == "fpfma" or (unit in ("fpmul", "fpadd") and fmt not in SMALL_FORMATS)
            for latency in latencies:
                yield Proof(f"{unit}-pipe-{fmt}-L{latency}", lambda c=cls, f=fmt: c(f),
                            lambda c=cls, f=fmt, n=latency: c(f, latency=n), 0, latency,
                            fast=(fmt == "e4m3" and latency == 2 and unit == "fpmul"),
                            engine=PIPELINE_LEMMAS if lemmas else "auto",
                            timeout=120.0 if fmt in SMALL_FORMATS else 600.0,
                            summary=f"pipelined {unit} (latency {latency}) == combinational, {fmt}"
                                    + (", by pipeline lemmas" if lemmas else ""))


def _fp_reference_proofs():
    # The reference RTL lives in formal/ (reference_fp.py, specs.py): only the blocks under proof may be missing.
    if not (_have("fp_mul") and _have("fp_add")):
        return
    from ..hdl.fp_add import FPAdder
    from ..hdl.fp_mul import FPMultiplier
    from .reference_fp import ReferenceAdder, ReferenceMultiplier
    for unit, ref, cls in (("fpmul", ReferenceMultiplier, FPMultiplier), ("fpadd", ReferenceAdder, FPAdder)):
        for fmt in SMALL_FORMATS + ("bf16", "fp16"):
            for subnormals in ("keep", "flush"):
                tag = "" if subnormals == "keep" else "-flush"
                # Wide multipliers: no monolithic proof finishes in minutes, so the shared significand
                # multiplier is cut out (proven identically fed, its product a free input).
                wide_mul = unit == "fpmul" and fmt not in SMALL_FORMATS
                yield Proof(f"{unit}-ref-{fmt}{tag}", lambda r=ref, f=fmt, s=subnormals: r(f, subnormals=s),
                            lambda c=cls, f=fmt, s=subnormals: c(f, subnormals=s),
                            fast=(fmt == "e4m3" and not tag) or (wide_mul and fmt == "bf16" and not tag),
                            timeout=120.0 if fmt in SMALL_FORMATS else 600.0,
                            cut=("sig_mul",) if wide_mul else (),
                            summary=f"{unit} == plain reference RTL, {fmt}, subnormals {subnormals}")


CONVERSIONS = (("bf16", "e4m3"), ("bf16", "e5m2"), ("bf16", "e3m2"), ("bf16", "e2m3"), ("bf16", "e2m1"),
               ("fp16", "e4m3"), ("fp16", "e5m2"), ("fp32", "e4m3"), ("e4m3", "bf16"), ("e5m2", "fp16"),
               ("e2m1", "e4m3"), ("e3m2", "bf16"))


def _convert_proofs():
    if not _have("fp_convert"):
        return
    from ..hdl.fp_convert import FPConvert
    from .specs import ConvertSpec
    # No input assumption: the golden model refuses NaN into a format without NaN, but the block
    # and the spec still agree on those inputs, which the proof shows.
    for src, dst in CONVERSIONS:
        yield Proof(f"fpcvt-ref-{src}-{dst}", lambda s=src, d=dst: ConvertSpec(s, d), lambda s=src, d=dst: FPConvert(s, d),
                    fast=(src, dst) == ("bf16", "e4m3"),
                    summary=f"FP converter == plain reference RTL, {src} -> {dst}")
        yield Proof(f"fpcvt-pipe-{src}-{dst}-L2", lambda s=src, d=dst: FPConvert(s, d),
                    lambda s=src, d=dst: FPConvert(s, d, latency=2), 0, 2,
                    summary=f"pipelined FP converter (latency 2) == combinational, {src} -> {dst}")


# (v, C_a, chains, metric, element bits): small configurations, every chain count from one chain to
# one PE per chain. L2 squares the differences, and no proof over 8-bit squares finishes in ten
# minutes, so the L2 proofs take 3- and 4-bit elements: the same chains, tree and tie rule.
CENTROID_CONFIGS = ((2, 4, 2, "linf", 8), (2, 4, 1, "linf", 8), (2, 4, 4, "linf", 8), (2, 8, 4, "linf", 8),
                    (4, 4, 2, "linf", 8), (2, 2, 2, "l2", 4), (2, 4, 2, "l2", 4), (2, 4, 1, "l2", 3),
                    (2, 4, 4, "l2", 3), (4, 4, 2, "l2", 3))


def _centroid_proofs():
    if not _have("centroid_search"):
        return
    from ..hdl.centroid_search import CentroidSearch
    from .specs import CentroidSearchSpec
    for v, c_a, chains, metric, bits in CENTROID_CONFIGS:
        # The unit's documented latency, chain_length + ceil(log2(chains)), without building one here.
        latency = -(-c_a // chains) + (chains - 1).bit_length()
        width = "" if bits == 8 else f"-e{bits}"
        # The spec never stalls: the proof covers the pipeline with the output always taken.
        yield Proof(f"centroid-v{v}-c{c_a}-k{chains}-{metric}{width}",
                    lambda v=v, c=c_a, mt=metric, e=bits: CentroidSearchSpec(v, c, metric=mt, element_bits=e),
                    lambda v=v, c=c_a, k=chains, mt=metric, e=bits: CentroidSearch(v, c, metric=mt, chains=k,
                                                                                 element_bits=e),
                    0, latency, assume="o__ready",
                    timeout=600.0, summary=f"centroid search unit == plain argmin, v={v}, C_a={c_a}, "
                                           f"{chains} chains, {metric}, {bits}-bit elements, output always ready")


# (C_w, table bits, lanes, positions, tiles, stall cycles): whole GEMVs small enough to prove in
# minutes; the second tile shows the accumulators restart after `last`.
GEMV_CONFIGS = ((4, 4, 2, 2, 1, 1), (4, 4, 2, 2, 2, 1), (4, 4, 2, 3, 2, 1))


def _gemv_proofs():
    if not _have("lut_gemv"):
        return
    from .gemv import GemvProof, Holds, completion_deadline, harness_signature
    for c_w, bits, lanes, positions, tiles, stalls in GEMV_CONFIGS:
        shape = dict(c_w=c_w, table_bits=bits, lanes=lanes, positions=positions, tiles=tiles)
        # The harness's verdict is final at its deadline, so that is its latency (see :mod:`.gemv`).
        deadline = completion_deadline(tiles=tiles, positions=positions, stalls=stalls)
        yield Proof(f"gemv-c{c_w}-b{bits}-l{lanes}-p{positions}-t{tiles}-s{stalls}",
                    lambda s=shape: Holds(harness_signature(**s)), lambda s=shape, k=stalls: GemvProof(**s, stalls=k),
                    0, deadline,
                    fast=(positions, tiles) == (2, 1), timeout=600.0,
                    summary=f"LUT GEMV engine == plain MAC reference over a whole GEMV, C_w={c_w}, {bits}-bit "
                            f"entries, {lanes} lanes, {positions} positions, {tiles} tiles, any lane masks, "
                            f"up to {stalls} stall cycles")


# (C_a, C_w, table bits, lanes, positions, tiles, stall cycles) of the block-RAM engine's proofs: its
# tables are loaded entry by entry first, so C_a * C_w * positions cycles come before the lookups.
BRAM_GEMV_CONFIGS = ((2, 2, 2, 2, 2, 1, 1), (2, 2, 2, 2, 2, 2, 1))


def _bram_gemv_proofs():
    if not _have("lut_bram_gemv"):
        return
    from .bram_gemv import BramGemvProof, bram_deadline
    from .gemv import Holds, harness_signature
    for c_a, c_w, bits, lanes, positions, tiles, stalls in BRAM_GEMV_CONFIGS:
        shape = dict(c_a=c_a, c_w=c_w, table_bits=bits, lanes=lanes, positions=positions, tiles=tiles)
        yield Proof(f"bramgemv-a{c_a}-c{c_w}-b{bits}-l{lanes}-p{positions}-t{tiles}-s{stalls}",
                    lambda s=shape: Holds(harness_signature(**s)), lambda s=shape, k=stalls: BramGemvProof(**s, stalls=k),
                    0, bram_deadline(c_a=c_a, c_w=c_w, positions=positions, tiles=tiles, stalls=stalls),
                    fast=tiles == 1, timeout=600.0,
                    summary=f"block-RAM LUT GEMV engine == plain MAC reference over a whole GEMV, tables loaded "
                            f"first, C_a={c_a}, C_w={c_w}, {bits}-bit entries, {lanes} lanes, {positions} positions, "
                            f"{tiles} tiles, any lane masks, up to {stalls} stall cycles")


def _block_gemv_proofs():
    if not _have("block_gemv"):
        return
    from ..hdl.block_gemv import ChunkProduct, ChunkTerms
    from .block_gemv import ChunkProductSpec
    # The exact part (decoding, products, sum, scales, exponent, NaN) before the shared fp32 RoundPack;
    # the whole datapath including rounding against the reference rounding is slow.
    # Chunks of 1: two products already take the SAT engine past 10 minutes. E8M0 weight scales only:
    # an E4M3 scale splits into significand and exponent differently in the spec (value · 2^-9), so
    # NVFP4 terms agree only after rounding.
    for weight, act, chunk, fast in (("mxint4", "mxint8", 1, True), ("mxfp4", "mxfp8_e4m3", 1, False)):
        yield Proof(f"blockgemv-chunk-{weight}-{act}-c{chunk}",
                    lambda w=weight, a=act, c=chunk: ChunkProductSpec(w, a, chunk=c, terms=True),
                    lambda w=weight, a=act, c=chunk: ChunkTerms(w, a, chunk=c), fast=fast, timeout=600.0,
                    summary=f"block GEMV chunk datapath before rounding (decoding, products, sum, scales, "
                            f"exponent, NaN) == plain table RTL, {weight} x {act}, chunks of {chunk}")
    yield Proof("blockgemv-chunk-mxint4-mxint8-c1-rounded",
                lambda: ChunkProductSpec("mxint4", "mxint8", chunk=1),
                lambda: ChunkProduct("mxint4", "mxint8", chunk=1), timeout=1200.0,
                summary="block GEMV chunk datapath with its fp32 rounding == plain table RTL with the reference "
                        "rounding, mxint4 x mxint8, chunks of 1")


def _function_unit_proofs():
    """The decoder block's function units: against their golden tabulated (8-bit formats), and
    pipelined against combinational (by the pipeline lemmas: they are built of FMAs). A 2-entry
    seed table and two Newton steps give the e5m2 reciprocal and rsqrt a pipeline to prove (with
    the default table they need no step in e5m2 or bf16)."""
    if not _have("fp_funcs"):
        return
    from ..golden import fp_funcs as golden
    from ..hdl.fp_funcs import FPExp, FPReciprocal, FPRsqrt
    from .specs import FunctionTableSpec
    units = (("recip", FPReciprocal, golden.reciprocal), ("rsqrt", FPRsqrt, golden.rsqrt), ("exp", FPExp, golden.exp))
    for unit, cls, function in units:
        yield Proof(f"{unit}-spec-e5m2", lambda f=function: FunctionTableSpec("e5m2", f), lambda c=cls: c("e5m2"),
                    fast=unit == "recip", timeout=120.0,
                    summary=f"{unit} unit == its golden model tabulated, e5m2")
        kw = {} if unit == "exp" else {"seed_bits": 1, "iterations": 2}
        # Pipeline stages per Newton step (reciprocal: 2 FMAs; rsqrt: a multiplier and 2 FMAs), or
        # exp's multiplier, adder and Horner chain.
        stages = {"recip": 2 * 2, "rsqrt": 3 * 2}
        for fmt in ("e5m2",) if kw else ("e5m2", "bf16"):
            latency = stages.get(unit, 2 + golden.exp_degree(fmt))
            yield Proof(f"{unit}-pipe-{fmt}-L1", lambda c=cls, f=fmt, k=kw: c(f, **k),
                        lambda c=cls, f=fmt, k=kw: c(f, latency=1, **k), 0, latency, engine=PIPELINE_LEMMAS,
                        timeout=600.0, summary=f"pipelined {unit} unit (each operator 1 stage) == combinational, "
                                               f"{fmt}{', 2-entry seed table' if kw else ''}, by pipeline lemmas")
    # SiLU's datapath (exp, adder, reciprocal, multiplier) is what its stream unit runs per element.
    from ..golden.silu import silu
    from ..hdl.silu import SiLUDatapath
    yield Proof("silu-spec-e5m2", lambda: FunctionTableSpec("e5m2", silu), lambda: SiLUDatapath("e5m2"),
                timeout=600.0, summary="SiLU datapath == its golden model tabulated, e5m2")
    # The residual-add / gain-product unit's datapath against the plain reference adder and multiplier.
    from ..hdl.fp_binary_stream import FPBinaryDatapath
    from .reference_fp import ReferenceAdder, ReferenceMultiplier
    from .specs import PairSpec
    # The FMA the RoPE unit (and the function units) are built of, and RoPE's datapath, against
    # the plain reference FMA (exact sum, one rounding) and multiplier.
    if _have("fp_fma"):
        from ..hdl.fp_fma import FPFusedMultiplyAdd
        from ..hdl.rope import RoPEDatapath
        from .reference_fp import ReferenceFMA
        from .specs import RoPESpec
        yield Proof("fpfma-ref-e5m2", lambda: ReferenceFMA("e5m2"), lambda: FPFusedMultiplyAdd("e5m2"), timeout=600.0,
                    summary="fpfma == plain reference RTL (exact sum, one rounding), e5m2")
        yield Proof("rope-ref-e5m2", lambda: RoPESpec("e5m2"), lambda: RoPEDatapath("e5m2"), timeout=600.0,
                    summary="RoPE datapath == reference multipliers and FMAs, e5m2")
    # The KV cache writer against the golden's address formulas, cycle for cycle under any stalls:
    # 24 cycles from reset hold several appends, a refused descriptor among them.
    from ..hdl.kv_cache_writer import KVCacheWriter
    from .specs import KVCacheWriterSpec
    for fmt, d, lanes in (("e5m2", 4, 2), ("bf16", 6, 1), ("e5m2", 8, 4)):
        yield Proof(f"kvwriter-ref-{fmt}-d{d}-l{lanes}", lambda f=fmt, n=d, l=lanes: KVCacheWriterSpec(f, n, lanes=l),
                    lambda f=fmt, n=d, l=lanes: KVCacheWriter(f, n, lanes=l), engine="bmc", depth=24,
                    fast=lanes == 2, timeout=600.0,
                    summary=f"KV cache writer == golden address formulas (bounded, 24 cycles), {fmt}, D {d}, {lanes} lanes")
    # The attention unit on one query over up to two keys against its golden written as plain
    # reference RTL: cover at step 14 without stalls, so 16 cycles hold the query and two stalls.
    from ..hdl.attention import AttentionDecode
    from .attention_check import AttentionCheck
    yield Proof("attention-ref-e5m2-d2-k2", None, lambda: AttentionCheck("e5m2", 2, 2), engine=PROPERTIES, depth=16,
                timeout=3600.0, mutant=lambda: AttentionCheck("e5m2", 2, 2, unit=AttentionDecode(
                    "e5m2", 2, 2, acc="e5m2", mul="lmul", addr_width=4)),
                summary="attention unit == golden as reference RTL, one query, D 2, 1-2 keys, e5m2 (bounded, 16 cycles)")
    for op, ref in (("add", ReferenceAdder), ("mul", ReferenceMultiplier)):
        yield Proof(f"fpstream-{op}-ref-e5m2", lambda r=ref: PairSpec(r("e5m2")),
                    lambda o=op: FPBinaryDatapath("e5m2", o), fast=op == "mul", timeout=120.0,
                    summary=f"fp_stream {op} datapath == plain reference RTL, e5m2")


def proofs() -> dict[str, Proof]:
    """Every registered proof by name."""
    found = {}
    for source in (_lmul_proofs, _fp_pipeline_proofs, _fp_reference_proofs, _convert_proofs, _centroid_proofs,
                   _gemv_proofs, _bram_gemv_proofs, _block_gemv_proofs, _function_unit_proofs):
        for proof in source():
            found[proof.name] = proof
    return found


def run_proofs(selected: "list[Proof]", *, cache: bool = True, solver: str = "yices",
               timeout: "float | None" = None, executor=None) -> list[ProofResult]:
    """Run ``selected`` on ``executor`` (:mod:`lutforge.support.executor`; default: one after
    another here), their results in their order."""
    from ..support.executor import LocalExecutor
    if not selected:
        raise UsageError("No proofs were selected, and proving nothing proves nothing; name a proof or a block.")
    if timeout is not None and not timeout > 0:
        raise UsageError(f"A proof timeout of {timeout!r} seconds is not allowed; give more than 0 seconds.")
    # Workers build each proof from the registry by its name; a proof built from parameters
    # (block_proof) is not in it, so a selection with one runs here.
    if all(p.name in proofs() for p in selected):
        return (executor or LocalExecutor()).map(
            _run_registered, [(p.name, cache, solver, timeout) for p in selected], labels=[p.name for p in selected],
            desc="proofs")
    results = []
    bar = progress(selected, desc="proofs", unit="proof")
    for proof in bar:
        bar.set_postfix_str(proof.name)
        results.append(proof.run(cache=cache, solver=solver, timeout=timeout))
    return results


def _run_registered(task) -> ProofResult:
    """One registered proof by name (a task: workers build the proof from the registry)."""
    name, cache, solver, timeout = task
    return proofs()[name].run(cache=cache, solver=solver, timeout=timeout)


def _specs():
    """Plain reference RTL for catalogue blocks, keyed by block name."""
    from ..golden.lmul import LMulPolicy
    from .specs import LMulSpec

    def lmul(params):
        pol = LMulPolicy.wrap() if params["policy"] == "wrap" else LMulPolicy(overflow=params["overflow"])
        return LMulSpec(params["format"], pol)
    return {"lmul": lmul}


def block_proof(name: str, given: dict[str, str]) -> Proof:
    """A proof of catalogue block ``name`` with parameters ``given`` (``NAME=VALUE`` strings): its
    pipelined form against its combinational form when it has a latency, else against its spec."""
    from ..blocks import get_block
    block = get_block(name)
    params = block.resolve(given, simulate=False)
    latency = block.latency(params)
    if latency and "latency" in block.params:
        comb = dict(params, latency=0)
        return Proof(f"{name}-pipe", lambda: block.build(comb), lambda: block.build(params), 0, latency)
    specs = _specs()
    if name not in specs:
        pipelined = "give it a latency above 0 to prove the pipelined form, or " if "latency" in block.params else ""
        raise UsageError(f"Block {name!r} has no reference to prove it against: {pipelined}use one of the blocks "
                         f"with a spec: {', '.join(specs)}.")
    return Proof(f"{name}-spec", lambda: specs[name](params), lambda: block.build(params))
