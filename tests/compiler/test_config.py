"""The YAML accelerator + quantization config: defaults, shipped files, and errors that name the
key, the bad value and the allowed range."""

import re

import pytest

from lutforge.compiler.config import (REPO_ROOT, ConfigError, Config, check_layers, load_config, model_linears,
                                      parse_config)
from lutforge.support.errors import MissingFileError, UsageError


def test_default_file_is_the_schema_default():
    cfg = load_config()
    assert cfg.name == "default"
    assert cfg.to_dict() | {"name": "default"} == Config().to_dict()


# configs/explore-*.yaml are design spaces of `lutforge explore`, whose points are configurations.
SHIPPED = sorted((REPO_ROOT / "configs").glob("*.yaml"))
SPACES = [p for p in SHIPPED if p.stem.startswith("explore-")]


@pytest.mark.parametrize("path", [p for p in SHIPPED if p not in SPACES], ids=lambda p: p.stem)
def test_every_shipped_config_loads(path):
    assert load_config(path).name == path.stem


@pytest.mark.parametrize("path", SPACES, ids=lambda p: p.stem)
def test_every_shipped_space_loads(path):
    from lutforge.jobs.explore_space import load_space
    assert load_space(path).name == path.stem


def test_lut_methods_section():
    cfg = parse_config({"lut_methods": {"default": "mxint4",
                                        "layers": {"layers.3.mlp.up": {"kind": "nvfp4", "fit": "gptq"}}}})
    assert cfg.lut_methods.method("layers.0.mlp.up").kind == "mxint4"
    assert cfg.lut_methods.method("layers.3.mlp.up").fit == "gptq"
    assert parse_config({}).lut_methods is None


@pytest.mark.parametrize("data, message", [
    ({"quantization": {"c_a": 1}},
     "quantization.c_a=1 is not an integer from 2 to 256."),
    ({"quantization": {"v": "two"}},
     "quantization.v='two' is not an integer from 1 to 8."),
    ({"quantization": {"table_bits": 6}},
     "quantization.table_bits=6 is not one of 4, 8."),
    ({"core": {"metric": "l1"}},
     "core.metric='l1' is not one of 'linf', 'l2'."),
    ({"core": {"tables": "bram"}},
     "core.tables='bram' is not one of 'auto', 'rows', 'resident'."),
    ({"quantization": {"group_rows": 100}},
     "quantization.group_rows = 100 is not a multiple of core.lanes = 16; the core walks a row block "
     "in whole tiles of lanes rows."),
    ({"quantization": {"positions_per_run": 2000}},
     "quantization.positions_per_run = 2000 exceeds core.max_positions = 1024; lower it or build a "
     "larger core."),
    ({"quantization": {"scheme": "artifact"}},
     "quantization.scheme = 'artifact' needs granularity 'layer' and rounding 'rne'; got granularity "
     "'block', rounding 'rne'."),
    ({"calibration": {"rows": 600}},
     "calibration.rows=600 is not an integer from 1 to 256."),
    ({"target": {"preset": "vu9p"}},
     "target.preset='vu9p' is not one of 'sim', 'icebreaker', 'ulx3s-85f', "
     "'orangecrab-25f', 'v80'."),
    ({"quantization": {"c_aa": 64}},
     "Unknown key quantization.c_aa in cfg.yaml; allowed keys: v, c_a, c_w, group_rows, table_bits, "
     "scheme, granularity, head_rows, rounding, positions_per_run, iterations, seed."),
    ({"accelerator": {}},
     "Unknown section 'accelerator' in cfg.yaml; allowed sections: quantization, core, calibration, "
     "evaluation, target, lut_methods, finetune, blocks, decoder."),
    # The decoder units' formats: only where whole blocks run on hardware, and only what the units take.
    ({"blocks": "fpga"}, "blocks='fpga' is not one of 'host', 'hardware'."),
    ({"decoder": {"max_keys": 64}},
     "Section 'decoder' in cfg.yaml sets the formats of the decoder block's units, which run only with blocks: "
     "hardware, and cfg.yaml has blocks: host; add 'blocks: hardware' or remove 'decoder'."),
    ({"blocks": "hardware", "decoder": {"attention_format": "e4m3"}},
     "decoder.attention_format = 'e4m3': Format 'e4m3' cannot carry the function units: they need IEEE specials "
     "(Inf for 1/0, NaN for invalid inputs), a sign and 1 to 23 mantissa bits; use fp32, bf16, fp16 or an e8mX "
     "format."),
    ({"blocks": "hardware", "decoder": {"attention_offset": 16248}},
     "decoder.attention_offset = 16248 is given with exact products; set attention_mul: lmul or remove the "
     "offset."),
    ({"blocks": "hardware", "decoder": {"attention_mul": "lmul", "attention_offset": "paper"}},
     "decoder.attention_offset = 'paper' is not an integer; give L-Mul's offset as an integer (the paper's for "
     "bf16 is 16248) or leave it out."),
    ({"blocks": "hardware", "decoder": {"attention_mul": "approx"}},
     "decoder.attention_mul = 'approx' is not one of exact, lmul; choose one of them."),
    ({"blocks": "hardware", "decoder": {"max_keys": 1}},
     "decoder.max_keys = 1 is outside 2 to 65535; give an integer in range."),
    ({"blocks": "hardware", "decoder": {"norm": "fp32"}},
     "Unknown key decoder.norm in cfg.yaml; allowed keys: norm_format, attention_format, attention_acc, "
     "attention_mul, attention_offset, attention_lanes, mlp_format, max_keys, seed_bits."),
    ({"model": "llama"},
     "model='llama' is not one of 'smollm2'."),
    ({"lut_methods": {"default": "mxint4", "extra": 1}},
     "Unknown key lut_methods.extra in cfg.yaml; allowed keys: default, layers."),
    ({"lut_methods": {"layers": ["layers.0.mlp.up"]}},
     "lut_methods.layers in cfg.yaml must map layer names to methods; got ['layers.0.mlp.up']."),
    # A section that is there but empty configures nothing: a lost indentation, not a wish for defaults.
    ({"core": None},
     "Section 'core' in cfg.yaml is empty; set at least one of its keys (lanes, chains, max_positions, metric, "
     "memory_latency, tables) or remove the section."),
    ({"evaluation": {}},
     "Section 'evaluation' in cfg.yaml is empty; set at least one of its keys (windows, window) or remove the "
     "section."),
    ({"target": ["v80"]}, "Section 'target' in cfg.yaml must be a mapping of keys to values; got ['v80']."),
    ({"lut_methods": None},
     "Section 'lut_methods' in cfg.yaml is empty; give it a 'default' method (and optional per-layer 'layers') "
     "or remove it."),
    ({"lut_methods": {"default": "mxint4", "layers": {}}},
     "lut_methods.layers in cfg.yaml is empty; name layers with their methods or remove the key."),
    ({"lut_methods": {"default": {"kind": "bf16", "hadamard": 64}}},
     "lut_methods.default.hadamard has no effect on kind 'bf16' (only LUT methods read it); remove it or use "
     "kind: lut."),
    ({"lut_methods": {"default": "mxint4", "layers": {"layers.0.mlp.upp": "bf16"}}},
     "lut_methods.layers in cfg.yaml: layer 'layers.0.mlp.upp' is not a linear layer of SmolLM2-135M; its "
     "linear layers are 'layers.0.attn.q' ... 'layers.29.mlp.down' (layers.N.attn.q, .attn.k, .attn.v, .attn.o, "
     ".mlp.gate, .mlp.up or .mlp.down)."),
    # One compile path: a file says how layers are quantized once, and only with what a core runs.
    ({"quantization": {"v": 2}, "lut_methods": {"default": "mxint4"}},
     "cfg.yaml has both 'quantization' (one co-quantized LUT setting for every layer) and 'lut_methods' (a "
     "method per layer); keep one of them."),
    ({"lut_methods": {"default": "mxint4", "layers": {"layers.3.attn.v": "bf16"}}},
     "Layer layers.3.attn.v uses kind 'bf16', which no core of the accelerator runs (the block core takes "
     "MXINT8, MXINT4, MXFP4 and NVFP4 weights); give it kind mxint8 (8.25 bits per weight, the closest to "
     "bf16) or another block or LUT kind."),
    ({"lut_methods": {"default": "fp32"}},
     "Layer layers.0.attn.q uses kind 'fp32', which no core of the accelerator runs (the block core takes "
     "MXINT8, MXINT4, MXFP4 and NVFP4 weights); give it kind mxint8 (8.25 bits per weight, the closest to "
     "fp32) or another block or LUT kind."),
    ({"lut_methods": {"default": "mxint4", "layers": {"layers.0.mlp.up": {"kind": "lut", "scales": "artifact"}}}},
     "Layer layers.0.mlp.up uses the LUT method 'v2 Ca64 Cw16 GN 8b/artifact kmeans', whose float zero point "
     "(scales: artifact) the core's integer tables cannot hold; use table_bits 4 or 8 with scales 'block' or "
     "'layer'."),
    ({"lut_methods": {"default": "mxint4", "layers": {"layers.0.mlp.up": {"kind": "lut", "table_bits": 0}}}},
     "Layer layers.0.mlp.up uses the LUT method 'v2 Ca64 Cw16 GN fpb/block kmeans', whose float tables the "
     "core's integer tables cannot hold; use table_bits 4 or 8 with scales 'block' or 'layer'."),
    ({"lut_methods": {"default": {"kind": "nvfp4", "act": "bf16"}}},
     "lut_methods.default.act = 'bf16' is not allowed; use mxint8 | mxfp8_e4m3."),
    ({"lut_methods": {"default": "mxint4", "layers": {"layers.0.mlp.up": {"kind": "lut", "act": "mxfp8_e4m3"}}}},
     "lut_methods.layers.layers.0.mlp.up.act = 'mxfp8_e4m3' is not allowed; use it only on a block kind "
     "(mxint8, mxint4, mxfp4, nvfp4); the LUT core searches int8 activations."),
    ({"name": "a/b"},
     "name='a/b' in cfg.yaml is not a usable configuration name; it names a folder of the build "
     "directory, so give a text without '/' that is not '.' or '..'."),
    ({"name": ".."},
     "name='..' in cfg.yaml is not a usable configuration name; it names a folder of the build "
     "directory, so give a text without '/' that is not '.' or '..'."),
    ({"target": {"bandwidth_gbs": float("nan")}},
     "target.bandwidth_gbs = nan is not a finite number above 0; use a positive number."),
])
def test_errors_name_key_value_and_range(data, message):
    with pytest.raises(ConfigError, match="^" + re.escape(message) + "$"):
        parse_config(data, "cfg.yaml")


def test_yaml_file_errors_and_overrides(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("core:\n  lanes: 0\n")
    with pytest.raises(ConfigError, match=r"^core\.lanes=0 is not an integer from 1 to 1024\.$"):
        load_config(path)
    cfg = load_config(None, {"quantization.c_a": 128})
    assert cfg.quantization.c_a == 128
    with pytest.raises(MissingFileError, match="^The configuration file .*missing.yaml does not exist; check the "
                                               "path.$"):
        load_config(tmp_path / "missing.yaml")
    path.write_text("core:\n  lanes: 8\ncore:\n  lanes: 16\n")
    with pytest.raises(UsageError, match=r"bad\.yaml, line 3: key 'core' is given twice \(first on line 1\)"):
        load_config(path)


@pytest.mark.parametrize("override, message", [
    ("core.lanez", "--set core.lanez names no configuration key: section core has no key 'lanez' (its keys are "
                   "lanes, chains, max_positions, metric, memory_latency, tables); fix the name."),
    ("lanes", "--set lanes names no configuration key: the sections are quantization, core, calibration, "
              "evaluation, target, finetune, decoder; fix the name."),
    ("name.x", "--set name.x names no configuration key: the sections are quantization, core, calibration, "
               "evaluation, target, finetune, decoder; fix the name."),
])
def test_overrides_name_a_schema_key(override, message):
    with pytest.raises(ConfigError, match="^" + re.escape(message) + "$"):
        load_config(None, {override: 4})


def test_an_override_fills_an_absent_section(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("name: c\n")
    assert load_config(path, {"core.lanes": 32, "quantization.group_rows": 512}).core.lanes == 32


def test_model_linears_are_the_models(smollm2_ir):
    # The shape table lets layer names be checked before the model loads; it must be the model's.
    assert model_linears() == {layer.name: (layer.out_features, layer.in_features)
                               for layer in smollm2_ir.linear_layers()}


@pytest.mark.parametrize("names, message", [
    ([], "No layers are named; name at least one linear layer of SmolLM2-135M, or none to take the default ones."),
    (["layers.0.attn.q", "layers.0.attn.q"], "Layer 'layers.0.attn.q' is given twice; give each layer once."),
    (["lm_head"], "Layer 'lm_head' is not a linear layer of SmolLM2-135M; its linear layers are 'layers.0.attn.q' "
                  "... 'layers.29.mlp.down' (layers.N.attn.q, .attn.k, .attn.v, .attn.o, .mlp.gate, .mlp.up or "
                  ".mlp.down)."),
])
def test_check_layers(names, message):
    with pytest.raises(UsageError, match="^" + re.escape(message) + "$"):
        check_layers(names)


def test_cache_hash_depends_only_on_named_sections():
    a = parse_config({})
    b = parse_config({"target": {"preset": "v80"}})
    c = parse_config({"quantization": {"c_w": 32}})
    assert a.hash("quantization") == b.hash("quantization") != c.hash("quantization")
    assert a.hash() != b.hash()


def test_a_searched_configuration_is_written_ready_to_train(tmp_path):
    # `quantize --finetune STEPS`: the file `run` reads back trains first, with the shipped
    # configuration's hyper-parameters (configs/smollm2-lut.yaml).
    from lutforge.compiler.lut_methods import LayerMethod
    from lutforge.compiler.search import search_finetune, write_method_config
    from lutforge.compiler.session import MethodConfig

    cfg = MethodConfig("searched", LayerMethod(kind="mxint8"), {"layers.3.mlp.up": LayerMethod(kind="nvfp4")})
    write_method_config(tmp_path / "searched.yaml", cfg, "a comment", search_finetune(60))
    loaded = load_config(tmp_path / "searched.yaml")
    shipped = load_config(REPO_ROOT / "configs" / "smollm2-lut.yaml").finetune
    assert loaded.finetune.steps == 60 and loaded.lut_methods.method("layers.3.mlp.up").kind == "nvfp4"
    assert {k: v for k, v in vars(loaded.finetune).items() if k != "steps"} == \
        {k: v for k, v in vars(shipped).items() if k != "steps"}
    write_method_config(tmp_path / "plain.yaml", cfg)
    assert load_config(tmp_path / "plain.yaml").finetune is None
