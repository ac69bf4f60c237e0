"""The stage views, in pipeline order: (tab value, tab label, module). Each module has `section()` (the tab's
content) and `register(app)` (its callbacks); the page skeleton and app.py read this list."""
from . import ablation, attention, decoding, embeddings, heads, logit_lens, mlp, output, residual, tokens

VIEWS = [
    ("tokens", "Tokens", tokens),
    ("embeddings", "Embeddings", embeddings),
    ("attention", "Attention head", attention),
    ("heads", "All heads", heads),
    ("mlp", "MLP", mlp),
    ("residual", "Residual & LayerNorm", residual),
    ("logit-lens", "Logit lens", logit_lens),
    ("ablation", "Head ablation", ablation),
    ("output", "Next token", output),
    ("generation", "Generation", decoding),  # sampling, beam search, speculative, int8
]

# Each view's main element: projector mode shows it first, fitted to the screen (Generation keeps its own
# order: its controls come before the text they make).
MAIN = {"tokens": "token-chips", "embeddings": "embedding-heatmap", "attention": "attention-scores",
        "heads": "heads-grid", "mlp": "mlp-pre", "residual": "residual-norms", "logit-lens": "lens-table",
        "ablation": "ablation-picker", "output": "output-candidates"}
