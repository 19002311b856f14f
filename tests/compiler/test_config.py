"""The YAML accelerator + quantization config: defaults, shipped files, and errors that name the
key, the bad value and the allowed range."""

import re

import pytest

from lutforge.compiler.config import REPO_ROOT, ConfigError, Config, load_config, parse_config


def test_default_file_is_the_schema_default():
    cfg = load_config()
    assert cfg.name == "default"
    assert cfg.to_dict() | {"name": "default"} == Config().to_dict()


@pytest.mark.parametrize("path", sorted((REPO_ROOT / "configs").glob("*.yaml")), ids=lambda p: p.stem)
def test_every_shipped_config_loads(path):
    assert load_config(path).name == path.stem


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
     "evaluation, target, lut_methods."),
    ({"model": "llama"},
     "model='llama' is not one of 'smollm2'."),
    ({"lut_methods": {"default": "mxint4", "extra": 1}},
     "Unknown key lut_methods.extra in cfg.yaml; allowed keys: default, layers."),
    ({"lut_methods": {"layers": ["layers.0.mlp.up"]}},
     "lut_methods.layers in cfg.yaml must map layer names to methods; got ['layers.0.mlp.up']."),
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
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "missing.yaml")


def test_cache_hash_depends_only_on_named_sections():
    a = parse_config({})
    b = parse_config({"target": {"preset": "v80"}})
    c = parse_config({"quantization": {"c_w": 32}})
    assert a.hash("quantization") == b.hash("quantization") != c.hash("quantization")
    assert a.hash() != b.hash()
