import os

import pytest

# The transformers oracle must never reach a model hub; everything it needs is in the GGUF file.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


@pytest.fixture(scope="session")
def smollm2_ir():
    from lutforge.compiler.gguf_frontend import load_gguf

    return load_gguf(progress=False)


@pytest.fixture(scope="session")
def smollm2_ref(smollm2_ir):
    from lutforge.compiler.torch_reference import ReferenceModel

    return ReferenceModel(smollm2_ir)


@pytest.fixture(scope="session")
def tokenizer():
    from lutforge.compiler.data import GGUFTokenizer
    from lutforge.compiler.gguf_frontend import smollm2_path

    return GGUFTokenizer(smollm2_path())


@pytest.fixture(scope="session")
def hf_gguf_model():
    """transformers' own GGUF import of the same file: an independent dequantizer and an
    independent undoing of llama.cpp's q/k row permutation."""
    import torch
    import transformers

    from lutforge.compiler.gguf_frontend import smollm2_path

    path = smollm2_path()
    model = transformers.AutoModelForCausalLM.from_pretrained(
        path.parent, gguf_file=path.name, dtype=torch.float32)
    return model.eval()
