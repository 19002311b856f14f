"""The centroid search unit with narrow elements: simulated against the golden int8 search, refused
outside its widths, and proven equal to the plain argmin under the L2 metric.

Narrow elements exist so that L2 proofs finish; these tests show that a narrow unit is the same
unit (the golden model, which knows nothing of element widths, is its reference on the int8
values that fit) and that its proofs can fail.
"""

import itertools

import numpy as np
import pytest

from lutforge.blocks.centroid_search import pack_fields
from lutforge.golden.centroid_search import search
from lutforge.hdl.centroid_search import CentroidSearch
from lutforge.sim.batch import BatchSim
from lutforge.formal.engines import prove_equivalent
from lutforge.formal.results import FAIL, PASS
from lutforge.formal.mutate import mutants
from lutforge.formal.specs import CentroidSearchSpec
from lutforge.formal.suite import proofs


def _simulate(unit: CentroidSearch, x: np.ndarray, book: np.ndarray) -> np.ndarray:
    """Indices the unit returns for int8 sub-vectors ``x`` (n, v) and codebooks ``book`` (n, c_a, v)."""
    n, e = len(x), unit.element_bits
    inputs = {
        "i__valid": np.ones(n, dtype=np.uint64),
        # Two's complement in e bits: the low e bits of each int8.
        "i__payload": pack_fields([(x.view(np.uint8), e), (book.reshape(n, -1).view(np.uint8), e)]),
        "o__ready": np.ones(n, dtype=np.uint64),
    }
    return BatchSim(unit).run_vectors(inputs, latency=unit.latency).outputs["o__payload"].astype(np.int64)


@pytest.mark.parametrize("metric", ["linf", "l2"])
def test_narrow_unit_matches_the_golden_search_on_every_input(metric):
    # v=2, C_a=2, 3-bit elements: all 2^18 inputs.
    values = np.arange(-4, 4, dtype=np.int8)
    rows = np.array(list(itertools.product(values, repeat=6)), dtype=np.int8)
    x, book = rows[:, :2].copy(), rows[:, 2:].reshape(-1, 2, 2).copy()
    got = _simulate(CentroidSearch(2, 2, metric=metric, chains=2, element_bits=3), x, book)
    np.testing.assert_array_equal(got, search(x, book, metric))


@pytest.mark.parametrize("metric", ["linf", "l2"])
def test_narrow_unit_with_chains_and_a_tree_matches_the_golden_search(metric):
    rng = np.random.default_rng(7)
    n, v, c_a = 20_000, 4, 7
    x = rng.integers(-8, 8, (n, v), dtype=np.int8)
    book = rng.integers(-8, 8, (n, c_a, v), dtype=np.int8)
    # Ties: a repeated centroid, and activations sitting on a centroid.
    book[:, 5] = book[:, 2]
    x[: n // 4] = book[: n // 4, 3]
    # The extremes of 4-bit elements give the largest distances, 15 per element.
    x[-100:], book[-100:] = -8, 7
    got = _simulate(CentroidSearch(v, c_a, metric=metric, chains=3, element_bits=4), x, book)
    np.testing.assert_array_equal(got, search(x, book, metric))


@pytest.mark.parametrize("bits", [1, 9, True, 4.0])
@pytest.mark.parametrize("make", [lambda e: CentroidSearch(2, 4, element_bits=e),
                                  lambda e: CentroidSearchSpec(2, 4, element_bits=e)])
def test_element_widths_outside_2_to_8_bits_are_refused_with_the_fix(make, bits):
    message = (rf"element_bits={bits!r} is not supported: centroid search elements are signed integers "
               rf"of 2 to 8 bits; use 8 for int8 operands, or 2 to 7 for a narrow unit\.")
    with pytest.raises(ValueError, match=message):
        make(bits)


def test_narrow_l2_proof_passes_and_an_injected_fault_fails():
    proof = proofs()["centroid-v2-c2-k2-l2-e4"]
    assert proof.run().status == PASS
    bundle = mutants(proof.gate(), count=4, seed=1)
    statuses = [prove_equivalent(proof.gold(), bundle.netlist, gate_latency=proof.gate_latency,
                                 fixed={"mutsel": m.index}, assume=proof.assume, timeout=proof.timeout).status
                for m in bundle.mutants]
    assert FAIL in statuses, [str(m) for m in bundle.mutants]


def test_an_l2_unit_is_not_proven_equal_to_the_linf_argmin():
    # Same ports, different metric: the proof must tell them apart.
    gate = CentroidSearch(2, 2, metric="l2", chains=2, element_bits=3)
    result = prove_equivalent(CentroidSearchSpec(2, 2, metric="linf", element_bits=3), gate,
                              gate_latency=gate.latency, assume="o__ready", cache=False)
    assert result.status == FAIL
    cex = result.counterexample
    assert cex.gold["o__payload"] != cex.gate["o__payload"]
