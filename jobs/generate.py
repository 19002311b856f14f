"""The job behind ``lutforge generate``: greedy text from the accelerator, next to PyTorch fp32's.

Every decoder linear of every block runs on its core through one backend (``golden``: the golden
models; ``sim``: the RTL in Verilator), token after token. With ``blocks: host`` the host keeps
the embedding, the norms, RoPE, attention with its KV cache, SiLU and the LM head; with ``blocks:
hardware`` those run on the decoder block's units too (:mod:`lutforge.program.decoder`) and the
host keeps only the embedding and the LM head. The prompt is run once (prefill), then each new
token alone. ``accumulators_sha256`` hashes every accumulator every hardware layer returned and
every output of every decoder unit, in call order, so two backends are compared by one value.
"""

from __future__ import annotations

import functools
import time
from pathlib import Path

import numpy as np

from ..backends import get_backend
from ..compiler.torch_reference import routed
from ..compiler.perf_units import decoder_units_cycles
from ..program.decoder import DecoderRunner
from ..program.host import HostDriver
from ..compiler.checkpoint import load_model, model_key
from ..compiler.config import Config, check_config_for
from ..compiler.data import check_data
from ..compiler.steps import Build, compile_model
from ..support.checks import check_choice, check_int
from ..support.errors import UsageError
from ..support.progress import progress as progress_bar
from .results import GenerateResult

__all__ = ["generate", "greedy", "on_hardware", "make_backend", "check_prompt", "prompt_ids", "layer_kinds",
           "agreement", "MAX_NEW_TOKENS", "GENERATE_BACKENDS"]

MAX_NEW_TOKENS = 256
GENERATE_BACKENDS = ("golden", "sim")


def greedy(model, prompt: list[int], tokens: int, *, progress: bool = False, desc: str = "generate") -> list[int]:
    """``tokens`` greedy tokens after ``prompt`` (token ids) with a KV cache (ties: lowest id)."""
    import torch

    from ..compiler.torch_reference import KVCache

    cache = KVCache()
    out = []
    step = torch.tensor(prompt, dtype=torch.int64)
    with torch.inference_mode():
        for _ in progress_bar(range(tokens), desc=desc, disable=None if progress else True, leave=False):
            logits = model(step, cache)[0, -1]
            out.append(int(torch.argmax(logits)))
            step = torch.tensor([out[-1]], dtype=torch.int64)
    return out


def on_hardware(ref, driver: HostDriver, prompt: list[int], tokens: int, *, progress: bool = False,
                desc: str = "generate") -> tuple[list[int], float]:
    """Greedy tokens with every linear of ``driver``'s Program on its backend; (tokens, seconds)."""
    with routed(ref, driver):
        t0 = time.perf_counter()
        return greedy(ref, prompt, tokens, progress=progress, desc=desc), time.perf_counter() - t0


def make_backend(name: str, cfg: Config, core_options: dict | None = None):
    """The backend ``name`` for a Program compiled with ``cfg`` (the sim backend with its core's build)."""
    if name == "sim":
        keys = {"decoder_max_keys": cfg.decoder.max_keys} if cfg.decoder else {}
        return get_backend("sim", core=cfg.core_params, **{"memory_latency": cfg.core.memory_latency, **keys,
                                                           **(core_options or {})})
    return get_backend(name)


def check_prompt(prompt: str) -> None:
    if not isinstance(prompt, str) or not prompt.strip():
        raise UsageError("The prompt is empty; give a text to continue, e.g. --prompt 'The capital of France is'.")


def prompt_ids(tok, ir, prompt: str, tokens: int) -> list[int]:
    ids = tok.encode(prompt)
    context = ir.config.context_length
    if len(ids) + tokens > context:
        raise UsageError(f"The prompt has {len(ids)} tokens; with {tokens} new ones that exceeds the model's "
                         f"context of {context} tokens, so shorten the prompt or ask for fewer tokens.")
    return ids


def generate(cfg: Config, build_dir, prompt: str, tokens: int = 8, *, backend: str = "golden",
             progress: bool = True, model=None, core_options: dict | None = None,
             checkpoint: str | None = None) -> GenerateResult:
    """Greedy ``tokens`` tokens after ``prompt`` on ``backend``, and PyTorch fp32's for comparison
    (arguments checked before the model is loaded). The model is ``model`` (a loaded (ir, reference,
    tokenizer)), else ``checkpoint`` (default: the bundled SmolLM2-135M)."""
    check_int("tokens", tokens, 1, MAX_NEW_TOKENS)
    check_choice("backend", backend, GENERATE_BACKENDS)
    check_prompt(prompt)
    if model is None:
        check_config_for(cfg, model_key(checkpoint))
    check_data("valid")
    ir, ref, tok = model or load_model(checkpoint, progress=progress)
    ids = prompt_ids(tok, ir, prompt, tokens)
    program = compile_model(Build(Path(build_dir), cfg, progress), ir, ref.linear_names, reference=ref,
                            tokenizer=tok)
    t0 = time.perf_counter()
    reference = greedy(ref, ids, tokens, progress=progress, desc="PyTorch fp32")
    t_ref = time.perf_counter() - t0
    driver = HostDriver(program, make_backend(backend, cfg, core_options))
    if cfg.blocks == "hardware":
        if len(ids) + tokens > cfg.decoder.max_keys:
            raise UsageError(f"The prompt has {len(ids)} tokens; with {tokens} new ones that exceeds the attention "
                             f"unit's decoder.max_keys = {cfg.decoder.max_keys}, so shorten the prompt, ask for "
                             f"fewer tokens or raise decoder.max_keys.")
        t0 = time.perf_counter()
        runner = DecoderRunner(ir, driver, cfg.decoder)
        out = runner.greedy(ids, tokens, progress=functools.partial(
            progress_bar, desc=f"generate ({backend}, whole blocks)", disable=None if progress else True, leave=False))
        seconds = time.perf_counter() - t0
        unit_model = sum(decoder_units_cycles(ir.config, t, start, cfg.core.memory_latency, cfg.decoder.attention_lanes)
                         for t, start in runner.steps)
    else:
        out, seconds = on_hardware(ref, driver, ids, tokens, progress=progress, desc=f"generate ({backend})")
        unit_model = None
    return GenerateResult(backend, prompt, tuple(ids), tuple(out), tok.decode(out), tuple(reference),
                          tok.decode(reference), len(program.layers), layer_kinds(program), cfg.blocks,
                          driver.accumulators.hexdigest(), seconds, t_ref,
                          driver.cycles if backend == "sim" else None,
                          driver.unit_cycles if backend == "sim" and cfg.blocks == "hardware" else None, unit_model,
                          str(program.path))


def layer_kinds(program) -> dict[str, int]:
    """How many of the Program's layers run on each core kind."""
    kinds: dict[str, int] = {}
    for layer in program.layers.values():
        kinds[layer.kind] = kinds.get(layer.kind, 0) + 1
    return kinds


def agreement(tokens, reference) -> int:
    """How many leading tokens two generations share."""
    return int(np.cumprod([a == b for a, b in zip(tokens, reference)]).sum())
