"""Whole-GEMV proofs of the LUT GEMV engine: they pass, and they fail on every kind of fault.

The reference (:func:`lutforge.formal.gemv.mac_reference`) is a plain multiply-accumulate
loop; the faults are injected into the engine's own netlist (:mod:`lutforge.formal.mutate`),
into the reference, and into the engine's timing, so a harness that checks nothing, checks the
wrong thing or never finishes is caught.
"""

import pytest
from amaranth import Const, Module

from lutforge.hdl.lut_gemv import LutGemvEngine
from lutforge.formal.engines import prove_equivalent
from lutforge.formal.results import FAIL, PASS
from lutforge.formal.gemv import GemvProof, Holds, completion_deadline, harness_signature, mac_reference
from lutforge.formal.mutate import mutants
from lutforge.formal.suite import proofs

SMALL = dict(positions=2, tiles=1, stalls=1)
TWO_TILES = dict(positions=2, tiles=2, stalls=1)


def _prove(harness, **kw):
    return prove_equivalent(Holds(harness.signature), harness, gate_latency=harness.deadline, timeout=600, **kw)


def test_small_registered_gemv_proof_passes():
    proof = proofs()["gemv-c4-b4-l2-p2-t1-s1"]
    assert proof.fast
    result = proof.run()
    assert result.status == PASS, str(result)


def _ignores_the_mask(table, act, widx, mask, *, tiles, lanes, positions):
    every_lane = [[Const((1 << lanes) - 1, lanes)] * positions] * tiles
    return mac_reference(table, act, widx, every_lane, tiles=tiles, lanes=lanes, positions=positions)


def test_a_reference_that_ignores_padding_lanes_fails_the_proof():
    result = _prove(GemvProof(**SMALL, reference=_ignores_the_mask), cache=False)
    assert result.status == FAIL
    assert result.counterexample.gate["ok"] == 0


class _NeverAnswers(LutGemvEngine):
    """An engine that takes every row and never offers a result: the harness must not wait forever."""

    def elaborate(self, platform):
        m = Module()
        m.d.comb += self.rows.ready.eq(1)
        return m


def test_an_engine_that_never_answers_fails_at_the_deadline():
    result = _prove(GemvProof(**SMALL, engine=_NeverAnswers), cache=False)
    assert result.status == FAIL


# Faults of the engine's netlist, drawn once from the harness's mutants whose site is in the engine:
# flipped and stuck accumulator, entry, valid and row bits, and swapped multiplexers.
ENGINE_FAULTS = 6


@pytest.mark.slow  # six two-tile proofs, about 100 s; the default suite keeps the two faults above
def test_injected_engine_faults_fail_the_two_tile_proof():
    bundle = mutants(GemvProof(**TWO_TILES), count=None, seed=0)
    engine = [m for m in bundle.mutants if "engine" in m.target]
    chosen = engine[:ENGINE_FAULTS // 2] + [m for m in engine if m.kind == "swap"][:ENGINE_FAULTS // 2]
    assert len(chosen) == ENGINE_FAULTS
    shape = dict(c_w=4, table_bits=4, lanes=2, positions=TWO_TILES["positions"], tiles=TWO_TILES["tiles"])
    for mutant in chosen:
        result = prove_equivalent(Holds(harness_signature(**shape)), bundle.netlist,
                                  gate_latency=completion_deadline(**TWO_TILES), fixed={"mutsel": mutant.index},
                                  timeout=600)
        assert result.status == FAIL, f"{mutant}: {result}"


def test_harness_shapes_are_checked():
    with pytest.raises(ValueError, match=r"tiles=0 is not allowed in a GEMV proof; use an integer of at least 1\."):
        GemvProof(tiles=0)
    with pytest.raises(ValueError, match=r"stalls=-1 is not allowed in a GEMV proof; use an integer of at least 0\."):
        GemvProof(stalls=-1)
