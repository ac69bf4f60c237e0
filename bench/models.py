"""The model the benchmarks run: a given hub id or path, or a full-size GPT-2 with random weights (same sizes,
so the same speed as the trained one) saved the way Hugging Face saves it."""
import tempfile

import torch


def model_source(model: str | None) -> tuple[str, tempfile.TemporaryDirectory | None]:
    """(source for load_gpt2, the temporary folder to keep alive while it is used)."""
    if model is not None:
        return model, None
    import transformers
    folder = tempfile.TemporaryDirectory()
    torch.manual_seed(0)
    transformers.GPT2LMHeadModel(transformers.GPT2Config()).save_pretrained(folder.name)
    return folder.name, folder
