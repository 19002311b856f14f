"""The bundled model, SmolLM2-135M: its IR, the PyTorch reference built from it and its tokenizer."""

__all__ = ["load_model"]


def load_model(progress: bool = True):
    from ..compiler.data import GGUFTokenizer
    from ..compiler.gguf_frontend import load_gguf, smollm2_path
    from ..compiler.torch_reference import ReferenceModel

    ir = load_gguf(progress=progress)
    return ir, ReferenceModel(ir), GGUFTokenizer(smollm2_path())
