"""Which candidates the budgeted search scores on which layers (a stub session: no model)."""

import math
import types

import pytest

from lutforge.compiler import search
from lutforge.compiler.lut_methods import LayerMethod, streamed_bits


class StubSession:
    # Block 0 and block 1 each with a wide MLP projection and a narrow key projection.
    def __init__(self):
        self.sizes = {"layers.0.mlp.up": (1536, 576), "layers.0.attn.k": (192, 576),
                      "layers.1.mlp.up": (1536, 576), "layers.1.attn.k": (192, 576)}
        self.names = list(self.sizes)
        self.calib = types.SimpleNamespace(key="stub")
        self.scored = []

    def layer_error(self, name, m, rows):
        self.scored.append((name, m.kind))
        return 0.5


def test_lut_candidates_are_scored_only_where_they_can_pay(tmp_path, monkeypatch):
    monkeypatch.setenv("LUTFORGE_CACHE", str(tmp_path))
    menu = {"nvfp4": LayerMethod(kind="nvfp4"),
            "tmac": LayerMethod(kind="tmac", v=2, c_w=64, fit="gptq", hadamard=64),
            "lut": LayerMethod(v=4, c_a=64, c_w=16, table_bits=4, fit="gptq", hadamard=64)}
    # The weight-only candidate streams 3.33 bits on a 1536-row layer and 5.67 on a 192-row one,
    # where NVFP4 streams 4.5: plain arithmetic of (P·C_w·v·8 + N·P·log2 C_w) / (N·K) + scale bits.
    assert math.isclose(streamed_bits(menu["tmac"], 1536, 576), 3 + 64 * 8 / 1536 + 32 / (1536 * 576))
    assert streamed_bits(menu["tmac"], 192, 576) > 4.5
    # The co-quantized one: 1 index bit plus 64·16·4-bit tables per 4-vector position and row block,
    # 1.67 bits on 1536 rows, 6.3 on 192 (more than MXINT4's 4.25).
    assert streamed_bits(menu["lut"], 192, 576) > 4.25 > streamed_bits(menu["lut"], 1536, 576)
    s = StubSession()
    errors, _ = search.sensitivity(s, menu, 8, progress=False, lut_every=2)
    finite = {(l, c) for l, row in errors.items() for c, e in row.items() if math.isfinite(e)}
    assert finite == {(l, "nvfp4") for l in s.names} | {
        ("layers.0.mlp.up", "tmac"), ("layers.1.mlp.up", "tmac"),  # every block, fewer bits than NVFP4
        ("layers.0.mlp.up", "lut")}  # block 0 only (every 2nd), where it streams fewer bits than MXINT4
    assert len(s.scored) == len(finite)


def test_tuned_menu_tunes_the_lut_candidates_only():
    plain, tuned = search.candidates(), search.candidates(tune_steps=20)
    assert len(plain) == len(tuned)
    for m in tuned.values():
        assert m.tune_steps == (20 if m.kind in ("lut", "tmac") else 0)
    # Tuning changes no candidate's bits, so the budgets the search can meet stay the same.
    assert [m.kind for m in plain.values()] == [m.kind for m in tuned.values()]
    assert all(streamed_bits(a, 1536, 576) == streamed_bits(b, 1536, 576)
               for a, b in zip(plain.values(), tuned.values()))


@pytest.mark.slow
def test_sensitivity_and_probes_on_two_workers_equal_the_sessions_own(tmp_path, monkeypatch):
    """`lutforge quantize --workers 2`: each worker builds its own session of SmolLM2 and scores
    whole decoder blocks; the table and the loss probes equal the ones computed in this session."""
    from lutforge.compiler.session import Session
    from lutforge.support.executor import LocalExecutor
    menu = {"nvfp4": LayerMethod(kind="nvfp4"), "tmac": LayerMethod(kind="tmac", v=2, c_w=16, fit="kmeans")}
    results = []
    for workers in (1, 2):
        # A cache of its own for each run, so that the second does not read the first's results.
        monkeypatch.setenv("LUTFORGE_CACHE", str(tmp_path / str(workers)))
        s = Session({"windows": 1, "window": 32, "rows": 32}, progress=False)
        s.names = s.names[:14]  # two decoder blocks
        executor = LocalExecutor(workers=workers)
        errors, bits = search.sensitivity(s, menu, 8, progress=False, executor=executor)
        probes = search.probe_loss(s, errors, menu, progress=False, executor=executor)
        results.append((errors, bits, probes))
    assert results[0] == results[1]
    assert len(results[0][0]) == 14 and results[0][2]
