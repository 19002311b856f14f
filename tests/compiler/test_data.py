import pytest
import transformers

from lutforge.compiler.data import data_root, wikitext2, wikitext2_tokens
from lutforge.compiler.gguf_frontend import smollm2_path

# sha256 values from ../shared/data/wikitext-2/README.md.
SHA256 = {"test": "d790b833ef8cf03a90db7bf1271b7520b83c45ce07ba3c1a9699df81e239eca0",
          "valid": "f0737ed31fc1329026e95cb8b98e19c2a182c39c240ab909dc31abf2f8af58e8"}


@pytest.fixture(scope="module")
def hf_tokenizer():
    """transformers' own conversion of the GGUF tokenizer: an independent oracle."""
    path = smollm2_path()
    return transformers.AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name)


@pytest.mark.parametrize("split", ["valid", "test"])
def test_wikitext_files(split):
    data = wikitext2(split)
    assert data.sha256 == SHA256[split]
    assert data.path == data_root() / "wikitext-2" / f"{split}.txt"


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


def test_data_root_errors(monkeypatch, tmp_path):
    missing = tmp_path / "nowhere"
    monkeypatch.setenv("LUTFORGE_DATA", str(missing))
    with pytest.raises(FileNotFoundError, match=rf"The data folder {missing} does not exist\. Set "
                       rf"LUTFORGE_DATA .*\(\.\./shared/data next to the repository root\).*"
                       rf"LUTFORGE_DATA is currently"):
        data_root()
    monkeypatch.setenv("LUTFORGE_DATA", str(tmp_path))
    with pytest.raises(FileNotFoundError, match=r"wikitext-2/valid.txt is missing"):
        wikitext2("valid")
    with pytest.raises(ValueError, match="split 'train' is not one of"):
        wikitext2("train")
