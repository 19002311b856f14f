"""The pipeline-lemmas engine: a pipelined unit equals its combinational form by a structure lemma
(balanced feed-forward registers) and a function lemma (registers transparent, then ``sat``).

Each lemma must be able to fail: an unbalanced path and a feedback register are refused by the
structure check with their path named, and a fault inside one pipeline stage fails the function
lemma with a counterexample whose values come from Python models of the two circuits.
"""

import re

import pytest
from amaranth import Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from lutforge.hdl.fp_fma import FPFusedMultiplyAdd
from lutforge.hdl.fp_mul import FPMultiplier
from lutforge.formal.engines import prove_equivalent
from lutforge.formal.netlist import Netlist, cached_yosys
from lutforge.formal.results import FAIL, PASS
from lutforge.formal.mutate import mutants
from lutforge.formal.pipeline import ENGINE
from lutforge.formal.pipeline_structure import PipelineStructureError, check_pipeline_structure
from lutforge.formal.suite import proofs


class Inverter(wiring.Component):
    """``r = ~a`` after ``latency`` cycles; with ``short_bit0`` bit 0 skips the second register."""

    a: In(4)
    r: Out(4)

    def __init__(self, latency: int = 0, *, short_bit0: bool = False):
        self.latency, self.short_bit0 = latency, short_bit0
        super().__init__()

    def elaborate(self, platform):
        m = Module()
        if not self.latency:
            m.d.comb += self.r.eq(~self.a)
            return m
        first, second = Signal(4, name="first"), Signal(4, name="second")
        m.d.sync += [first.eq(~self.a), second.eq(first)]
        m.d.comb += self.r.eq(second)
        if self.short_bit0:
            m.d.comb += self.r[0].eq(first[0])
        return m


class EnabledInverter(wiring.Component):
    """``r = ~a`` after two cycles, masked by a chain of ``chain`` registers that load a constant 1
    (reset 0): correct once that chain has filled."""

    a: In(4)
    r: Out(4)

    def __init__(self, chain: int):
        self.chain = chain
        super().__init__()

    def elaborate(self, platform):
        m = Module()
        first, second = Signal(4, name="first"), Signal(4, name="second")
        m.d.sync += [first.eq(~self.a), second.eq(first)]
        ready = 1
        for index in range(self.chain):
            loaded = Signal(name=f"loaded{index}")
            m.d.sync += loaded.eq(ready)
            ready = loaded
        m.d.comb += self.r.eq(second & ready.replicate(4))
        return m


class Toggle(wiring.Component):
    """``r`` flips whenever ``a`` is 1: a register fed by its own output."""

    a: In(1)
    r: Out(1)

    def elaborate(self, platform):
        m = Module()
        state = Signal(name="state")
        m.d.sync += state.eq(state ^ self.a)
        m.d.comb += self.r.eq(state)
        return m


class AddThenMask(wiring.Component):
    """``r = (a + b) mod 256`` in two stages; with ``fault`` the second stage clears bit 7 of a sum
    whose bits 7 and 0 are both set."""

    a: In(8)
    b: In(8)
    r: Out(8)

    def __init__(self, latency: int = 0, *, fault: bool = False):
        self.latency, self.fault = latency, fault
        super().__init__()

    def elaborate(self, platform):
        m = Module()
        total = Signal(8, name="total")
        m.d.comb += total.eq(self.a + self.b)
        if not self.latency:
            m.d.comb += self.r.eq(total)
            return m
        stage1, stage2, masked = Signal(8, name="stage1"), Signal(8, name="stage2"), Signal(8, name="masked")
        m.d.comb += masked.eq(stage1)
        if self.fault:
            with m.If(stage1[7] & stage1[0]):
                m.d.comb += masked.eq(stage1 & 0x7F)
        m.d.sync += [stage1.eq(total), stage2.eq(masked)]
        m.d.comb += self.r.eq(stage2)
        return m


def faulty_sum(a: int, b: int) -> int:
    total = (a + b) & 0xFF
    return total & 0x7F if total & 0x81 == 0x81 else total


def test_a_wide_pipelined_multiplier_is_proven_by_the_lemmas_in_seconds_and_cached():
    result = prove_equivalent(FPMultiplier("bf16"), FPMultiplier("bf16", latency=3), gate_latency=3,
                              engine=ENGINE, timeout=120, cache=False)
    assert result.status == PASS, str(result)
    assert result.engine == "pipeline-lemmas/sat+merge"
    assert result.detail.startswith("Lemma 1: ") and ", 3 on every input-to-output path; Lemma 2" in result.detail
    again = prove_equivalent(FPMultiplier("bf16"), FPMultiplier("bf16", latency=3), gate_latency=3, engine=ENGINE)
    assert (again.status, again.engine) == (PASS, "pipeline-lemmas/sat+merge")
    assert prove_equivalent(FPMultiplier("bf16"), FPMultiplier("bf16", latency=3), gate_latency=3,
                            engine=ENGINE).cached


def test_the_function_lemma_keeps_the_cut_points_of_the_combinational_engine():
    # The significand multiplier is identical in both forms: cut out, its product is a free input.
    result = prove_equivalent(FPMultiplier("fp16"), FPMultiplier("fp16", latency=2), gate_latency=2, engine=ENGINE,
                              cut=("sig_mul",), timeout=120, cache=False)
    assert (result.status, result.engine) == (PASS, "pipeline-lemmas/sat+merge/cut:sig_mul"), str(result)


def test_the_structure_lemma_counts_registers_and_refuses_a_wrong_latency_naming_the_path():
    gate = Netlist.of(Inverter(2), "gate")
    assert check_pipeline_structure(gate, 2) == 2
    with pytest.raises(PipelineStructureError, match=(
            r"^Output r\[0\] is reached through 2 registers, not 3 on every path as the claimed latency says: "
            r"a\[0\] -> reg first\[0\] -> reg second\[0\] -> r\[0\] crosses 2\. "
            r"Balance the pipeline or claim its real latency\.$")):
        check_pipeline_structure(gate, 3)


def test_an_unbalanced_output_bit_is_refused_by_the_structure_lemma_and_its_real_counterexample_found():
    gate = Netlist.of(Inverter(2, short_bit0=True), "gate")
    with pytest.raises(PipelineStructureError, match=(
            r"^Output r\[0\] is reached through 1 register, not 2 on every path as the claimed latency says: "
            r"a\[0\] -> reg first\[0\] -> r\[0\] crosses 1\.")):
        check_pipeline_structure(gate, 2)
    result = prove_equivalent(Inverter(), Inverter(2, short_bit0=True), gate_latency=2, engine=ENGINE, cache=False)
    assert result.status == FAIL
    assert result.detail.startswith("Lemma 1 (structure) does not hold: Output r[0] is reached through 1 register")
    # Bit 0 leaves a cycle early: it shows the inverse of the input after the one it answers.
    cex = result.counterexample
    assert cex.gold["r"] == ~cex.inputs[cex.index]["a"] & 0xF
    assert cex.gate["r"] & 1 == ~cex.inputs[cex.index + 1]["a"] & 1 != cex.gold["r"] & 1


def test_registers_on_constants_are_allowed_only_while_they_fill_within_the_latency():
    assert prove_equivalent(Inverter(), EnabledInverter(2), gate_latency=2, engine=ENGINE, cache=False).status == PASS
    # Three registers from a constant: the output is masked on the third cycle after reset, when the
    # pipeline is already full.
    with pytest.raises(PipelineStructureError, match=(
            r"^Output r\[0\] depends on a chain of 3 registers, more than the latency 2, fed by constants only: "
            r"it shows reset values after the pipeline is full\.")):
        check_pipeline_structure(Netlist.of(EnabledInverter(3), "gate"), 2)
    result = prove_equivalent(Inverter(), EnabledInverter(3), gate_latency=2, engine=ENGINE, cache=False)
    assert result.status == FAIL and result.detail.startswith("Lemma 1 (structure) does not hold: Output r[0]")


def test_a_feedback_register_is_refused_by_the_structure_lemma():
    with pytest.raises(PipelineStructureError, match=(
            r"^The design has a register feedback loop: .*reg state.*\. Its state depends on every earlier "
            r"input, so it is no feed-forward pipeline; prove it with engine='sby'\.$")):
        check_pipeline_structure(Netlist.of(Toggle(), "gate"), 1)


def test_a_fault_in_one_pipeline_stage_fails_the_function_lemma_with_a_true_counterexample():
    assert prove_equivalent(AddThenMask(), AddThenMask(2), gate_latency=2, engine=ENGINE,
                            cache=False).status == PASS
    result = prove_equivalent(AddThenMask(), AddThenMask(2, fault=True), gate_latency=2, engine=ENGINE, cache=False)
    assert result.status == FAIL and result.engine == "pipeline-lemmas/sat+merge"
    assert "Lemma 2 (registers transparent): SAT model found" in result.detail
    cex = result.counterexample
    a, b = cex.inputs[cex.index]["a"], cex.inputs[cex.index]["b"]
    assert cex.gold["r"] == (a + b) & 0xFF != faulty_sum(a, b) == cex.gate["r"]


def test_fixed_inputs_select_mutants_of_a_flattened_pipeline():
    # Mutant 0 is the unmodified design; the selector is a constant to both lemmas.
    bundle = mutants(AddThenMask(2), count=6, seed=0)
    prove = lambda index: prove_equivalent(AddThenMask(), bundle.netlist, gate_latency=2, engine=ENGINE,
                                           fixed={"mutsel": index}, cache=False)
    unmutated = prove(0)
    assert unmutated.status == PASS and unmutated.engine.startswith("pipeline-lemmas/"), str(unmutated)
    assert any(prove(m.index).status == FAIL for m in bundle.mutants)


def optimised(design) -> str:
    """The flattened netlist after yosys ``opt``, which folds each reset multiplexer into a ``$sdff``."""
    return cached_yosys("test-formal-pipeline", Netlist.of(design, "gate").text, "opt.il",
                        lambda src, dst: f"read_rtlil {src}; hierarchy -top gate; proc; flatten; opt -full; "
                                         f"write_rtlil {dst}",
                        lambda log: RuntimeError(log))


def test_registers_with_the_reset_folded_in_are_plain_pipeline_registers_while_rst_is_low():
    text = optimised(Inverter(2))
    assert text.count("cell $sdff ") == 2
    result = prove_equivalent(Inverter(), Netlist(text, "gate"), gate_latency=2, engine=ENGINE, cache=False)
    assert (result.status, result.engine) == (PASS, "pipeline-lemmas/sat+merge"), str(result)
    # Reset by an input bit instead of rst: the register no longer loads D on every cycle.
    other = re.sub(r"connect \\SRST \\rst", r"connect \\SRST \\a [3]", text)
    with pytest.raises(PipelineStructureError, match=(
            r"^Register \S+ \(\$sdff\) is reset by another signal than the rst port held high; Lemma 1 needs "
            r"registers that load D whenever rst is low, so prove this design with engine='sby'\.$")):
        check_pipeline_structure(Netlist(other, "gate"), 2)


def test_the_engine_refuses_a_clocked_gold_and_a_combinational_gate_with_the_fix():
    with pytest.raises(ValueError, match=r"compares a pipelined gate with a combinational gold, but the gold has "
                                         r"latency 1 and a clock; compare two pipelines with engine='sby'\."):
        prove_equivalent(Inverter(1), Inverter(2), gold_latency=1, gate_latency=2, engine=ENGINE)
    with pytest.raises(ValueError, match=r"needs a clocked gate with latency 1 or more, not 0; prove a "
                                         r"combinational gate with engine='sat'\."):
        prove_equivalent(Inverter(), Inverter(), engine=ENGINE)


@pytest.mark.parametrize("name", ["fpmul-pipe-bf16-L2", "fpfma-pipe-e2m1-L3"])
def test_registered_pipeline_proofs_use_the_lemmas(name):
    proof = proofs()[name]
    assert proof.engine == ENGINE
    result = proof.run()
    assert result.status == PASS and result.engine.startswith("pipeline-lemmas/"), str(result)


def test_the_lemmas_prove_a_pipelined_fused_multiply_add():
    result = prove_equivalent(FPFusedMultiplyAdd("e4m3"), FPFusedMultiplyAdd("e4m3", latency=4), gate_latency=4,
                              engine=ENGINE, timeout=120)
    assert result.status == PASS, str(result)
