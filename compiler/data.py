"""Evaluation and calibration data: a model's tokenizer (stored in its GGUF file, or a Hugging Face
``tokenizer.json`` beside its weights), and WikiText-2.

WikiText-2 ships in the package as `data/wikitext-2/{valid,test}.txt` (licence and checksums in
its README.md); `$LUTFORGE_DATA`, if set, names another folder holding `wikitext-2/`. `valid` is
for calibration, `test` for perplexity, never the other way round.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..support.errors import MissingFileError, UsageError
from ..support.paths import REPO_ROOT
from ..support.cache import sha256_hex

SPLITS = ("valid", "test")
# The shipped files' checksums (data/wikitext-2/README.md): a damaged copy would change every
# calibration and perplexity without an error. A copy under $LUTFORGE_DATA may differ on purpose.
SHIPPED_SHA256 = {"valid": "f0737ed31fc1329026e95cb8b98e19c2a182c39c240ab909dc31abf2f8af58e8",
                  "test": "d790b833ef8cf03a90db7bf1271b7520b83c45ce07ba3c1a9699df81e239eca0"}

# llama.cpp's pre-tokenizers (``tokenizer.ggml.pre``) this loader rebuilds: "smollm" splits every digit
# on its own, then GPT-2's byte-level regex; the others split with their model's own regex, then map
# bytes without GPT-2's: Qwen2's (one digit per piece, letters with one leading non-letter) and
# Llama 3's (the same with up to three digits per piece).
_QWEN2_SPLIT = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|"
                r"\s*[\r\n]+|\s+(?!\S)|\s+")
_LLAMA3_SPLIT = _QWEN2_SPLIT.replace(r"|\p{N}|", r"|\p{N}{1,3}|")
_SPLITS = {"qwen2": _QWEN2_SPLIT, "llama-bpe": _LLAMA3_SPLIT, "llama3": _LLAMA3_SPLIT, "llama-v3": _LLAMA3_SPLIT}
_PRE_TOKENIZERS = {"smollm", "gpt2", "default", *_SPLITS}
_CONTROL = 3  # llama.cpp token type of special (control) tokens


def data_root() -> Path:
    """`$LUTFORGE_DATA` if set, else the `data/` folder shipped in the package."""
    env = os.environ.get("LUTFORGE_DATA")
    return Path(env) if env else REPO_ROOT / "data"


@dataclass(frozen=True)
class TextData:
    text: str
    path: Path
    sha256: str


def wikitext2(split: str) -> TextData:
    """The raw text of a WikiText-2 split ('valid' or 'test') with its sha256."""
    if split not in SPLITS:
        raise UsageError(f"split {split!r} is not one of {SPLITS}; use 'valid' for calibration and "
                         f"'test' for perplexity.")
    path = data_root() / "wikitext-2" / f"{split}.txt"
    shipped = not os.environ.get("LUTFORGE_DATA")
    fix = ("restore data/wikitext-2/ from the lutforge repository (its README.md lists the checksums), "
           "or set LUTFORGE_DATA to a folder holding wikitext-2/" if shipped else
           "unset LUTFORGE_DATA to use the copy shipped in the package, or point it at a folder "
           "holding wikitext-2/")
    if not path.is_file():
        raise MissingFileError(f"WikiText-2 file {path} does not exist; {fix}.")
    raw = path.read_bytes()
    digest = sha256_hex(raw)
    if shipped and digest != SHIPPED_SHA256[split]:
        raise UsageError(f"WikiText-2 file {path} has SHA-256 {digest[:16]}..., not the shipped "
                         f"{SHIPPED_SHA256[split][:16]}... (the file is damaged); {fix}.")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise UsageError(f"WikiText-2 file {path} is not UTF-8 text (byte {error.start}); {fix}.") from None
    if not text.strip():
        raise UsageError(f"WikiText-2 file {path} is empty, so it has no tokens to calibrate or score on; "
                         f"{fix}.")
    return TextData(text, path, digest)


def check_data(*splits: str) -> None:
    """Refuse a missing, damaged or empty split before the work that reads it starts (loading the
    model takes longer than reading the text twice)."""
    for split in splits:
        wikitext2(split)


class Tokenizer:
    """What the compiler needs of a model's tokenizer (a `tokenizers.Tokenizer` inside):
    ``encode``, ``decode``, ``token_to_id`` and ``vocab_size``."""

    def __init__(self, tok, vocab_size: int):
        self._tok = tok
        self._split_tokens: dict[tuple[str, str], np.ndarray] = {}
        self.vocab_size = vocab_size

    def encode(self, text: str) -> list[int]:
        return self._tok.encode(text, add_special_tokens=False).ids

    def decode(self, ids) -> str:
        return self._tok.decode([int(i) for i in ids], skip_special_tokens=False)

    def token_to_id(self, token: str) -> int | None:
        return self._tok.token_to_id(token)


class GGUFTokenizer(Tokenizer):
    """The byte-level BPE tokenizer stored in a GGUF file (tokens, merges, token types), built
    with the `tokenizers` package; nothing is downloaded."""

    def __init__(self, path: str | Path):
        from tokenizers import AddedToken, Regex, decoders, models, pre_tokenizers
        from tokenizers import Tokenizer as BPETokenizer

        from .gguf_frontend import open_gguf

        reader = open_gguf(Path(path).resolve())
        fields = reader.fields

        def get(key):
            if key not in fields:
                raise ValueError(f"{path} has no {key!r}; it does not carry a BPE tokenizer.")
            return fields[key].contents()

        kind = get("tokenizer.ggml.model")
        if kind != "gpt2":
            raise ValueError(f"tokenizer.ggml.model is {kind!r}; only 'gpt2' (byte-level BPE) is supported.")
        pre = fields["tokenizer.ggml.pre"].contents() if "tokenizer.ggml.pre" in fields else "default"
        if pre not in _PRE_TOKENIZERS:
            raise ValueError(f"tokenizer.ggml.pre is {pre!r}; supported pre-tokenizers are "
                             f"{sorted(_PRE_TOKENIZERS)}.")
        tokens = get("tokenizer.ggml.tokens")
        types = get("tokenizer.ggml.token_type")
        merges = [tuple(m.split(" ", 1)) for m in get("tokenizer.ggml.merges")]
        tok = BPETokenizer(models.BPE(vocab={t: i for i, t in enumerate(tokens)}, merges=merges,
                                      ignore_merges=False))
        byte_level = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=pre not in _SPLITS)
        if pre == "smollm":
            tok.pre_tokenizer = pre_tokenizers.Sequence([
                pre_tokenizers.Split(Regex(r"\p{N}"), behavior="isolated"), byte_level])
        elif pre in _SPLITS:
            tok.pre_tokenizer = pre_tokenizers.Sequence([
                pre_tokenizers.Split(Regex(_SPLITS[pre]), behavior="isolated"), byte_level])
        else:
            tok.pre_tokenizer = byte_level
        tok.decoder = decoders.ByteLevel()
        tok.add_special_tokens([AddedToken(t, special=True, normalized=False)
                                for t, ty in zip(tokens, types) if ty == _CONTROL])
        super().__init__(tok, len(tokens))
        self.bos_id = int(fields["tokenizer.ggml.bos_token_id"].contents()) if "tokenizer.ggml.bos_token_id" in fields else None
        self.eos_id = int(fields["tokenizer.ggml.eos_token_id"].contents()) if "tokenizer.ggml.eos_token_id" in fields else None


class HFTokenizer(Tokenizer):
    """A Hugging Face ``tokenizer.json`` (the file a model directory carries), read by the
    `tokenizers` package."""

    def __init__(self, path: str | Path):
        from tokenizers import Tokenizer as HFFile

        path = Path(path)
        if not path.is_file():
            raise MissingFileError(f"The tokenizer {path} does not exist; a model directory must hold its "
                                   f"tokenizer.json beside config.json.")
        try:
            tok = HFFile.from_file(str(path))
        except Exception as error:  # tokenizers raises its own Exception subclass with serde's words
            raise UsageError(f"The tokenizer {path} cannot be read ({str(error).splitlines()[0]}); replace it with "
                             f"the model's own tokenizer.json.") from None
        super().__init__(tok, tok.get_vocab_size(with_added_tokens=True))


def wikitext2_tokens(split: str, tokenizer: Tokenizer) -> tuple[np.ndarray, TextData]:
    """A whole WikiText-2 split tokenized in one piece (no BOS: the GGUF sets add_bos_token false),
    read-only and remembered per tokenizer."""
    data = wikitext2(split)
    key = (split, data.sha256)
    if key not in tokenizer._split_tokens:
        tokens = np.asarray(tokenizer.encode(data.text), dtype=np.int64)
        tokens.flags.writeable = False
        tokenizer._split_tokens[key] = tokens
    return tokenizer._split_tokens[key], data
