import sys
import types

from lutforge.support.cache import sha256_hex, source_hash
from lutforge.support.paths import REPO_ROOT


def _fake_module(monkeypatch, tmp_path, name: str, text: str) -> None:
    path = tmp_path / f"{name.replace('.', '_')}.py"
    path.write_text(text)
    module = types.ModuleType(name)
    module.__file__ = str(path)
    monkeypatch.setitem(sys.modules, name, module)


def test_source_hash_follows_the_source_text(monkeypatch, tmp_path):
    _fake_module(monkeypatch, tmp_path, "lutforge_fake_a", "x = 1\n")
    _fake_module(monkeypatch, tmp_path, "lutforge_fake_b", "y = 2\n")
    before = source_hash("lutforge_fake_a", "lutforge_fake_b")
    assert source_hash("lutforge_fake_b", "lutforge_fake_a") == before  # order does not matter
    assert source_hash("lutforge_fake_a") != before
    _fake_module(monkeypatch, tmp_path, "lutforge_fake_a", "x = 2\n")
    assert source_hash("lutforge_fake_a", "lutforge_fake_b") != before


def test_sha256_hex_and_repo_root():
    assert sha256_hex(b"abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    assert (REPO_ROOT / "support" / "paths.py").is_file() and (REPO_ROOT / "configs").is_dir()
