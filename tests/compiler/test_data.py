import hashlib
import importlib.resources
from pathlib import Path

import pytest
import transformers

from lutforge.compiler.data import data_root, wikitext2, wikitext2_tokens
from lutforge.compiler.gguf_frontend import smollm2_path
from lutforge.support.errors import LutforgeError, UsageError

# The checksums of the files of the pytorch/examples WikiText-2 copy (their source).
SHA256 = {"test": "d790b833ef8cf03a90db7bf1271b7520b83c45ce07ba3c1a9699df81e239eca0",
          "valid": "f0737ed31fc1329026e95cb8b98e19c2a182c39c240ab909dc31abf2f8af58e8"}


@pytest.fixture(scope="module")
def hf_tokenizer():
    """transformers' own conversion of the GGUF tokenizer: an independent oracle."""
    path = smollm2_path()
    return transformers.AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name)


@pytest.mark.parametrize("split", ["valid", "test"])
def test_wikitext_files(split, monkeypatch):
    monkeypatch.delenv("LUTFORGE_DATA", raising=False)
    data = wikitext2(split)
    assert data.sha256 == SHA256[split]
    assert data.path == data_root() / "wikitext-2" / f"{split}.txt"
    # Read from the package itself, wherever it is installed, with its licence and checksums.
    shipped = importlib.resources.files("lutforge") / "data" / "wikitext-2"
    assert hashlib.sha256((shipped / f"{split}.txt").read_bytes()).hexdigest() == SHA256[split]
    assert data.path == Path(str(shipped / f"{split}.txt"))
    readme = (shipped / "README.md").read_text()
    assert f"| `{split}.txt` |" in readme and SHA256[split] in readme
    assert "CC BY-SA" in readme and "Merity" in readme


def test_data_override(monkeypatch, tmp_path):
    (tmp_path / "wikitext-2").mkdir()
    (tmp_path / "wikitext-2" / "valid.txt").write_bytes(b" = Valkyria = \n")
    monkeypatch.setenv("LUTFORGE_DATA", str(tmp_path))
    data = wikitext2("valid")
    assert (data.text, data.path) == (" = Valkyria = \n", tmp_path / "wikitext-2" / "valid.txt")
    assert data.sha256 == hashlib.sha256(b" = Valkyria = \n").hexdigest()


def test_known_token_ids(tokenizer, hf_tokenizer):
    # Ids from SmolLM2's published tokenizer.json; " the" and "Hello" are single tokens.
    assert tokenizer.encode(" the") == [260]
    assert tokenizer.encode("Hello") == [19556]
    assert tokenizer.token_to_id("<|im_start|>") == tokenizer.bos_id == 1
    assert tokenizer.eos_id == 2
    assert hf_tokenizer.encode(" the", add_special_tokens=False) == [260]
    # Digits are split one by one (llama.cpp's "smollm" pre-tokenizer).
    assert tokenizer.encode(" 2004") == [216, 34, 32, 32, 36]


def test_round_trip_and_oracle_on_wikitext(tokenizer, hf_tokenizer):
    text = wikitext2("test").text
    line = next(l for l in text.splitlines() if l.startswith(" Robert <unk> is an English film"))
    assert tokenizer.decode(tokenizer.encode(line)) == line
    sample = text[:100_000]
    ids = tokenizer.encode(sample)
    assert ids == hf_tokenizer.encode(sample, add_special_tokens=False)
    assert tokenizer.decode(ids) == sample
    special = "<|im_start|>user\nHi 42<|im_end|>"
    assert tokenizer.encode(special) == hf_tokenizer.encode(special, add_special_tokens=False)
    assert tokenizer.encode(special)[0] == 1


def test_whole_split_tokens(tokenizer):
    tokens, data = wikitext2_tokens("test", tokenizer)
    assert tokens.dtype.name == "int64" and tokens.ndim == 1
    assert 250_000 < tokens.size < 400_000
    assert tokens.max() < tokenizer.vocab_size


def test_data_errors(monkeypatch, tmp_path):
    missing = tmp_path / "nowhere"
    monkeypatch.setenv("LUTFORGE_DATA", str(missing))
    with pytest.raises(FileNotFoundError, match=rf"^WikiText-2 file {missing}/wikitext-2/valid\.txt "
                       rf"does not exist; unset LUTFORGE_DATA to use the copy shipped in the "
                       rf"package, or point it at a folder holding wikitext-2/\.$") as error:
        wikitext2("valid")
    assert isinstance(error.value, LutforgeError) and "\n" not in str(error.value)
    monkeypatch.delenv("LUTFORGE_DATA")
    monkeypatch.setattr("lutforge.compiler.data.REPO_ROOT", tmp_path)
    with pytest.raises(FileNotFoundError, match=rf"^WikiText-2 file {tmp_path}/data/wikitext-2/test\.txt "
                       rf"does not exist; restore data/wikitext-2/ from the lutforge repository "
                       rf"\(its README\.md lists the checksums\), or set LUTFORGE_DATA to a folder "
                       rf"holding wikitext-2/\.$"):
        wikitext2("test")
    with pytest.raises(UsageError, match=r"split 'train' is not one of \('valid', 'test'\); use "
                       r"'valid' for calibration and 'test' for perplexity\."):
        wikitext2("train")
