"""Whole-GEMV proofs of the block-RAM LUT engine: they pass, and fail on faults of the engine, of
the reference and of the timing (each PASS paired with a FAIL), so the harness checks what it says."""

import pytest
from amaranth import Module

from lutforge.formal.bram_gemv import BramGemvProof, bram_deadline
from lutforge.formal.engines import prove_equivalent
from lutforge.formal.gemv import Holds, harness_signature, mac_reference
from lutforge.formal.mutate import mutants
from lutforge.formal.results import FAIL, PASS
from lutforge.formal.suite import proofs
from lutforge.hdl.lut_bram_gemv import LutBramGemvEngine

ONE_TILE = dict(positions=2, tiles=1, stalls=1)


def _prove(harness, latency=None):
    return prove_equivalent(Holds(harness.signature), harness, gate_latency=latency or harness.deadline,
                            timeout=600, cache=False)


def test_registered_one_tile_proof_passes():
    proof = proofs()["bramgemv-a2-c2-b2-l2-p2-t1-s1"]
    assert proof.fast
    result = proof.run()
    assert result.status == PASS, str(result)


def test_the_deadline_is_the_first_cycle_the_verdict_can_hold():
    # One cycle earlier, a run that spends its stall is still going: the harness calls it late.
    harness = BramGemvProof(**ONE_TILE)
    harness.deadline -= 1
    assert _prove(harness).status == FAIL


def _ignores_the_activation_index(table, act, widx, mask, *, tiles, lanes, positions):
    """Every position's table row 0, whatever its activation index: the engine does not compute this."""
    return mac_reference(table, [0] * positions, widx, mask, tiles=tiles, lanes=lanes, positions=positions)


def test_a_reference_that_ignores_the_activation_index_fails_the_proof():
    result = _prove(BramGemvProof(**ONE_TILE, reference=_ignores_the_activation_index))
    assert result.status == FAIL
    assert result.counterexample.gate["ok"] == 0


class _NeverAnswers(LutBramGemvEngine):
    def elaborate(self, platform):
        m = Module()
        m.d.comb += [self.load.ready.eq(1), self.lookups.ready.eq(1)]
        return m


def test_an_engine_that_never_answers_fails_at_the_deadline():
    assert _prove(BramGemvProof(**ONE_TILE, engine=_NeverAnswers)).status == FAIL


@pytest.mark.slow  # six one-tile proofs of netlist mutants, a few minutes
def test_injected_engine_faults_fail_the_proof():
    bundle = mutants(BramGemvProof(**ONE_TILE), count=None, seed=0)
    engine = [m for m in bundle.mutants if "engine" in m.target]
    # Flipped bits and swapped operands change the engine on some input by construction; a stuck bit
    # can be one the shape never sets (the running sum of 2 positions of 2-bit entries stays below 4).
    chosen = [m for m in engine if m.kind == "flip"][:3] + [m for m in engine if m.kind == "swap"][:3]
    assert len(chosen) == 6
    shape = dict(c_a=2, c_w=2, table_bits=2, lanes=2, positions=2, tiles=1)
    for mutant in chosen:
        result = prove_equivalent(Holds(harness_signature(**shape)), bundle.netlist,
                                  gate_latency=bram_deadline(c_a=2, c_w=2, positions=2, tiles=1, stalls=1),
                                  fixed={"mutsel": mutant.index}, timeout=600)
        assert result.status == FAIL, f"{mutant}: {result}"
