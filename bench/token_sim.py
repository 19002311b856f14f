"""Whole tokens through the simulated accelerator: seconds and cycles per decoded token.

A configuration (default: the shipped ``configs/smollm2-lut.yaml``, which fine-tunes once before it
compiles) is compiled for SmolLM2-135M (all 210 decoder linears, each on its core: LUT, block-format
or weight-only LUT), a prompt is
prefilled and ``--tokens`` tokens are decoded greedily with every linear in Verilator, then the same
on the golden backend; ``bit_exact`` says whether the two agree in every accumulator of every
call (one SHA-256 each) and in the tokens. Goal from the one-compile-path issue: <= 10 s per token
on 2 cores.

    python bench/token_sim.py [--tokens N] [--config PATH] [--json PATH]
"""

import argparse
import time
from pathlib import Path

import torch

from lutforge.backends import get_backend
from lutforge.compiler.torch_reference import routed
from lutforge.program.host import HostDriver
from lutforge.cli.common import write_json
from lutforge.compiler.checkpoint import load_model
from lutforge.compiler.config import load_config
from lutforge.compiler.steps import Build, compile_model
from lutforge.compiler.torch_reference import KVCache
from lutforge.jobs.generate import layer_kinds, make_backend

PROMPT = "The capital of France is"


def decode(ref, driver: HostDriver, prompt: list[int], tokens: int) -> tuple[list[int], list[float], list[int]]:
    """Greedy tokens with every linear on ``driver``; per step its seconds and simulated cycles
    (step 0 is the prefill of the prompt)."""
    cache, out, seconds, cycles = KVCache(), [], [], []
    step = torch.tensor(prompt)
    with routed(ref, driver), torch.inference_mode():
        for _ in range(tokens + 1):
            before, t0 = driver.cycles, time.perf_counter()
            out.append(int(torch.argmax(ref(step, cache)[0, -1])))
            seconds.append(time.perf_counter() - t0)
            cycles.append(driver.cycles - before)
            step = torch.tensor([out[-1]])
    return out, seconds, cycles


def measure(config: Path, tokens: int, build: Path) -> dict:
    torch.set_num_threads(2)
    cfg = load_config(config)
    ir, ref, tok = load_model()
    program = compile_model(Build(build, cfg), ir, ref.linear_names, reference=ref, tokenizer=tok)
    ids = tok.encode(PROMPT)
    sim = HostDriver(program, make_backend("sim", cfg))
    for layer in program.layers.values():
        sim.backend.core(layer)  # builds (or reads from the cache) before the clock starts
    sim_tokens, sim_seconds, sim_cycles = decode(ref, sim, ids, tokens)
    golden = HostDriver(program, get_backend("golden"))
    golden_tokens, golden_seconds, _ = decode(ref, golden, ids, tokens)
    decoded = len(sim_seconds) - 1
    return {"config": str(config), "prompt": PROMPT, "prompt_tokens": len(ids), "decoded_tokens": decoded,
            "seconds_per_token": sum(sim_seconds[1:]) / decoded, "cycles_per_token": sum(sim_cycles[1:]) / decoded,
            "prefill_seconds": sim_seconds[0], "prefill_cycles": sim_cycles[0],
            "golden_seconds_per_token": sum(golden_seconds[1:]) / decoded,
            "layers_on_hardware": len(program.layers), "layer_kinds": layer_kinds(program),
            "bit_exact": sim.accumulators.hexdigest() == golden.accumulators.hexdigest() and sim_tokens == golden_tokens,
            "accumulators_sha256": sim.accumulators.hexdigest(), "text": tok.decode(sim_tokens),
            "sim_build_seconds": sim.backend.build_seconds}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tokens", type=int, default=4, help="decoded tokens after the prefill (default 4)")
    parser.add_argument("--config", type=Path, default=Path(__file__).parent.parent / "configs" / "smollm2-lut.yaml")
    parser.add_argument("--build", type=Path, default=Path("out/bench/token_sim"), help="build directory")
    parser.add_argument("--json", metavar="PATH", help="write the measurements as JSON")
    args = parser.parse_args()
    if args.tokens < 1:
        parser.error(f"--tokens {args.tokens} decodes nothing; give 1 or more.")
    r = measure(args.config, args.tokens, args.build)
    print(f"{r['layers_on_hardware']} linears on hardware ({r['layer_kinds']}), {r['decoded_tokens']} decoded tokens: "
          f"{r['seconds_per_token']:.2f} s and {r['cycles_per_token']:.0f} simulated cycles per token in Verilator "
          f"(golden backend {r['golden_seconds_per_token']:.2f} s); prefill of {r['prompt_tokens']} tokens "
          f"{r['prefill_seconds']:.2f} s; sim == golden bit for bit: {r['bit_exact']}; goal <= 10 s per token.")
    write_json(args.json, r)


if __name__ == "__main__":
    main()
