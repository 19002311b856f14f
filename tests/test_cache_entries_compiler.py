"""The compiler's cache entries verify themselves, and ``lutforge cache info|clear`` shows and removes
them: a truncated fit or codebook, or an edited sensitivity table, is named on stderr, computed
again, and the result equals the clean one. (The calibration entry, which needs the model, is
tested in tests/compiler/test_calibration.py.)"""

import json
import types

import numpy as np
import pytest
import torch
from bad_input import Case, check_case

from lutforge.cli import main
from lutforge.compiler import lut_methods, search
from lutforge.compiler.config import Config, QuantConfig
from lutforge.compiler.lut_methods import LayerMethod, fit_cache_path, fit_layer
from lutforge.compiler.steps import Build, layer_cache_key, quantize_layer
from lutforge.support.cache import seal_entry, write_cached

RNG = np.random.default_rng(0)
W = RNG.standard_normal((32, 16)).astype(np.float32)
X = RNG.standard_normal((64, 16)).astype(np.float32)


@pytest.fixture
def cache(monkeypatch, tmp_path):
    root = tmp_path / "cache"
    monkeypatch.setenv("LUTFORGE_CACHE", str(root))
    return root


def damage(path, how: str) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2] if how == "truncate" else data[:-1] + bytes([data[-1] ^ 1]))


def discarded(path, problem: str) -> str:
    return f"lutforge: discarding cache entry {path}: {problem}; it will be rebuilt."


def content_changed(path) -> str:
    return (f"its content ({path.stat().st_size} bytes) does not match the SHA-256 recorded when it was "
            f"written")


# -- fits ---------------------------------------------------------------------------------------------

def fit_in_a_new_session(monkeypatch, m: LayerMethod, fits: list):
    def counting_fit(weight, calibration, method, device):
        fits.append(method)
        return fit_layer(weight, calibration, method, device)

    monkeypatch.setattr(lut_methods, "fit_layer", counting_fit)
    return lut_methods.cached_fit(W, X, m)


@pytest.mark.parametrize("how", ["truncate", "flip"])
def test_a_damaged_fit_is_named_and_refitted(cache, monkeypatch, capsys, how):
    m = LayerMethod(v=2, c_a=16, c_w=16, group_rows=16)
    fits = []
    clean = fit_in_a_new_session(monkeypatch, m, fits).forward(torch.from_numpy(X))
    path = fit_cache_path(cache / "lut_methods", W, X, m)
    damage(path, how)
    problem = content_changed(path)
    again = fit_in_a_new_session(monkeypatch, m, fits).forward(torch.from_numpy(X))
    assert capsys.readouterr().err == discarded(path, problem) + "\n"
    assert fits == [m, m] and torch.equal(again, clean)
    fit_in_a_new_session(monkeypatch, m, fits)
    assert fits == [m, m] and capsys.readouterr().err == ""  # the rebuilt entry is used


def test_a_fit_without_a_record_is_refitted(cache, monkeypatch, capsys):
    """A fit written by an older lutforge (no record) cannot be trusted, so it is fitted again."""
    m = LayerMethod(kind="bf16")
    fits = []
    clean = fit_in_a_new_session(monkeypatch, m, fits).forward(torch.from_numpy(X))
    path = fit_cache_path(cache / "lut_methods", W, X, m)
    path.with_name(path.name + ".entry.json").unlink()
    again = fit_in_a_new_session(monkeypatch, m, fits).forward(torch.from_numpy(X))
    assert capsys.readouterr().err == discarded(
        path, "it has no record (written by an older lutforge or interrupted)") + "\n"
    assert fits == [m, m] and torch.equal(again, clean)


# -- co-quantized layers and k-means codebooks --------------------------------------------------------

QUANT = QuantConfig(v=2, c_a=16, c_w=16, group_rows=16)


def _arrays(layer) -> dict:
    return {k: v for k, v in vars(layer).items() if isinstance(v, np.ndarray) and k != "tables"}


@pytest.mark.parametrize("kind", ["codebooks", "kmeans"])
def test_a_damaged_codebook_entry_is_named_and_rebuilt(cache, capsys, kind):
    clean, hit = quantize_layer(W, X, QUANT)
    assert not hit
    q = vars(QUANT) if kind == "codebooks" else {k: getattr(QUANT, k) for k in
                                                ("v", "c_a", "c_w", "group_rows", "iterations", "seed")}
    path = cache / kind / f"{layer_cache_key(W, X, q)}.npz"
    if kind == "kmeans":
        # Without the whole layer's entry the k-means entry is read.
        (cache / "codebooks" / f"{layer_cache_key(W, X, vars(QUANT))}.npz").unlink()
    damage(path, "truncate")
    problem = content_changed(path)
    again, hit = quantize_layer(W, X, QUANT)
    assert capsys.readouterr().err == discarded(path, problem) + "\n"
    assert not hit and path.is_file()
    for name, array in _arrays(clean).items():
        assert np.array_equal(getattr(again, name), array), name
    third, hit = quantize_layer(W, X, QUANT)
    assert hit and capsys.readouterr().err == ""


# -- sensitivity and loss probes ----------------------------------------------------------------------

class ScoringSession:
    """What :func:`search.sensitivity` and :func:`search.probe_loss` need of a Session, with scores
    that count their calls instead of fitting and evaluating a model."""

    def __init__(self):
        self.names = ["layers.0.mlp.up", "layers.1.mlp.up"]
        self.sizes = {n: (32, 64) for n in self.names}
        self.calib = types.SimpleNamespace(key="calibration-key")
        self._fitted = {}
        self.calls = 0

    def layer_error(self, name, m, rows):
        self.calls += 1
        return 0.01 * (1 + self.names.index(name)) * (1 + len(m.kind))

    def perplexity(self, cfg, windows, split):
        self.calls += 1
        return types.SimpleNamespace(nll=1.0 if cfg is None else 1.0 + 0.1 * len(cfg.layers))


MENU = {"mxint4": LayerMethod(kind="mxint4"), "lut": LayerMethod(v=2, c_a=16, c_w=16, group_rows=16)}


def test_an_edited_sensitivity_table_is_named_and_recomputed(cache, capsys):
    s = ScoringSession()
    clean = search.sensitivity(s, MENU, 8, progress=False, lut_every=1)
    calls = s.calls
    [path] = (cache / "lut_methods").glob(f"sensitivity-{'?' * 20}.json")
    path.write_text(path.read_text().replace("0.0", "0.5", 1))  # a plausible edit, same length
    problem = content_changed(path)
    assert search.sensitivity(s, MENU, 8, progress=False, lut_every=1) == clean
    assert capsys.readouterr().err == discarded(path, problem) + "\n"
    assert s.calls == 2 * calls
    assert search.sensitivity(s, MENU, 8, progress=False, lut_every=1) == clean and s.calls == 2 * calls


def test_damaged_loss_probes_are_named_and_measured_again(cache, capsys):
    s = ScoringSession()
    errors = {n: {"mxint4": 0.1, "lut": 0.2} for n in s.names}
    clean = search.probe_loss(s, errors, MENU, progress=False)
    [path] = (cache / "lut_methods").glob(f"loss-probes-{'?' * 20}.json")
    damage(path, "truncate")
    problem = content_changed(path)
    assert search.probe_loss(s, errors, MENU, progress=False) == clean
    assert capsys.readouterr().err == discarded(path, problem) + "\n"


# -- the build folder's intermediates -----------------------------------------------------------------

def test_a_changed_build_output_reruns_its_step(tmp_path, capsys):
    build = Build(tmp_path / "build", Config(), progress=False)
    out = build.root / "quantize" / "layer.npz"
    out.parent.mkdir()
    out.write_bytes(b"codes")
    build.finish("quantize", "inputs", [out], 0.0)
    assert build.cached("quantize", "inputs")["step"] == "quantize"
    out.write_bytes(b"coder")
    assert build.cached("quantize", "inputs") is None
    report = build.report_path("quantize")
    assert capsys.readouterr().err == (f"lutforge: rerunning step quantize of the build {build.root}: its output "
                                       f"{out} does not match the SHA-256 in {report}.\n")
    report.write_text('{"step": "quantize", "inp')
    assert build.cached("quantize", "inputs") is None
    assert capsys.readouterr().err == (f"lutforge: rerunning step quantize of the build {build.root}: its report "
                                       f"{report} is not a valid report.\n")


# -- lutforge cache info | clear ----------------------------------------------------------------------

KEY = "0123456789abcdef0123"


def size(folder) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def fill(root):
    """A cache with one sealed folder entry (formal) and two file entries (calib, lut_methods)."""
    folder = root / "formal" / KEY
    folder.mkdir(parents=True)
    (folder / "result.json").write_text('{"status": "PASS"}')
    seal_entry(folder, ["result.json"])
    write_cached(root / "calib" / f"{KEY}.npz", b"x" * 100)
    write_cached(root / "lut_methods" / f"sensitivity-{KEY}.json", b"{}")
    return folder


def test_info_lists_each_kind_and_verify_names_damaged_entries(cache, tmp_path, capsys):
    folder = fill(cache)
    assert main(["cache", "info", "--verify", "--json", str(tmp_path / "info.json")]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0] == f"cache {cache}: 3 kinds, 3 entries, {size(cache)} B"
    assert out.splitlines()[-1] == "all 3 entries match their records"
    info = json.loads((tmp_path / "info.json").read_text())
    assert [(k["kind"], k["entries"], k["bad"]) for k in info["kinds"]] == [
        ("calib", 1, []), ("formal", 1, []), ("lut_methods", 1, [])]
    assert [k["bytes"] for k in info["kinds"]] == [size(cache / k) for k in ("calib", "formal", "lut_methods")]

    (folder / "result.json").write_text('{"status": "FAIL"}')
    (cache / "calib" / f"{KEY}.npz").write_bytes(b"x" * 99)
    assert main(["cache", "info", "--verify", "--json", str(tmp_path / "info.json")]) == 1
    out = capsys.readouterr().out
    assert f"    failed its check: {folder}: its file result.json does not match the SHA-256 recorded when it " \
           f"was built\n" in out
    assert f"    failed its check: {cache / 'calib' / KEY}.npz: its content (99 bytes) does not match the SHA-256 " \
           f"recorded when it was written\n" in out
    assert out.splitlines()[-1].startswith("2 of 3 entries failed their check;")
    assert (folder / "result.json").is_file()  # info only reports; the next use discards
    info = json.loads((tmp_path / "info.json").read_text())
    assert [len(k["bad"]) for k in info["kinds"]] == [1, 1, 0]
    assert main(["cache", "info"]) == 0  # without --verify nothing is read


def test_clear_removes_the_named_kinds_then_everything(cache, tmp_path, capsys):
    fill(cache)
    freed = size(cache / "lut_methods")
    assert main(["cache", "clear", "calib", "formal", "--json", str(tmp_path / "clear.json")]) == 0
    assert capsys.readouterr().out.startswith(f"cleared calib, formal from {cache}: 2 entries, ")
    assert sorted(p.name for p in cache.iterdir()) == ["lut_methods"]
    assert json.loads((tmp_path / "clear.json").read_text())["kinds"] == ["calib", "formal"]
    assert main(["cache", "clear"]) == 0
    assert capsys.readouterr().out == f"cleared lut_methods from {cache}: 1 entries, {freed} B freed\n"
    assert list(cache.iterdir()) == []
    assert main(["cache", "clear"]) == 0
    assert capsys.readouterr().out == f"cleared nothing (the cache is empty) from {cache}: 0 entries, 0 B freed\n"


CACHE = "{tmp}/cache"
KINDS = {f"cache/calib/{KEY}.npz": "x", f"cache/formal/{KEY}/result.json": "{}"}
CASES = [
    Case("clear-unknown-kind", ("cache", "clear", "nosuchkind"),
         f"lutforge: The cache {CACHE} has no kind 'nosuchkind'; it holds calib, formal. Name kinds from "
         f"`lutforge cache info`, or none to clear the whole cache.", files=KINDS),
    Case("clear-kind-of-an-empty-cache", ("cache", "clear", "calib"),
         f"lutforge: The cache {CACHE} has no kind 'calib'; it is empty. Name kinds from `lutforge cache info`, "
         f"or none to clear the whole cache."),
    Case("clear-one-known-one-unknown", ("cache", "clear", "calib", "calibration"),
         f"lutforge: The cache {CACHE} has no kind 'calibration'; it holds calib, formal. Name kinds from "
         f"`lutforge cache info`, or none to clear the whole cache.", files=KINDS),
    Case("clear-a-kind-twice", ("cache", "clear", "calib", "calib"),
         "lutforge: cache clear calib is given twice; give each once.", files=KINDS),
    Case("clear-a-folder-that-is-not-a-cache", ("cache", "clear"),
         f"lutforge: {CACHE}/Documents/notes.txt is not a lutforge cache entry (its name holds no content key), "
         f"so nothing was cleared; check LUTFORGE_CACHE ({CACHE}) or remove {CACHE}/Documents by hand.",
         files={**KINDS, "cache/Documents/notes.txt": "mine"}),
    Case("cache-root-is-a-file", ("cache", "info"),
         f"lutforge: The cache root {CACHE} (LUTFORGE_CACHE) is not a directory; point LUTFORGE_CACHE at a "
         f"directory, or unset it to use ~/.cache/lutforge.", files={"cache": "a file"}),
    Case("clear-with-cache-root-a-file", ("cache", "clear", "calib"),
         f"lutforge: The cache root {CACHE} (LUTFORGE_CACHE) is not a directory; point LUTFORGE_CACHE at a "
         f"directory, or unset it to use ~/.cache/lutforge.", files={"cache": "a file"}),
    Case("info-json-is-a-directory", ("cache", "info", "--json", "{tmp}/out"),
         "lutforge: Output {tmp}/out is a directory; give a file path.", files={"out/keep": ""}),
    Case("clear-json-under-a-file", ("cache", "clear", "--json", "{tmp}/file/clear.json"),
         "lutforge: Output {tmp}/file/clear.json cannot be written: {tmp}/file is a file, not a directory; "
         "choose another path.", files={**KINDS, "file": "x"}),
    Case("cache-without-action", ("cache",),
         "lutforge cache: the following arguments are required: ACTION; see `lutforge cache --help`."),
    Case("cache-unknown-action", ("cache", "prune"),
         "lutforge cache: argument ACTION: invalid choice: 'prune' (choose from 'info', 'clear'); "
         "see `lutforge cache --help`."),
    Case("info-takes-no-kinds", ("cache", "info", "calib"),
         "lutforge: unrecognized arguments: calib; see `lutforge --help`."),
    Case("verify-finds-a-damaged-entry", ("cache", "info", "--verify"), "",
         files={**KINDS, f"cache/calib/{KEY}.npz.entry.json": '{"sha256": "0", "bytes": 1}'}, status=1),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_bad_cache_input(case, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("LUTFORGE_CACHE", str(tmp_path / "cache"))
    check_case(case, tmp_path, capsys)
    if case.status == 2 and (tmp_path / "cache").is_dir():
        assert (tmp_path / "cache" / "calib").is_dir()  # a refused clear removes nothing
