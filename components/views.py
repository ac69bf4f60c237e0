"""The stage views, in pipeline order: (tab value, tab label, module). Each module has `section()` (the tab's
content) and `register(app)` (its callbacks); the page skeleton and app.py read this list."""
from . import ablation, attention, embeddings, generation, heads, logit_lens, mlp, output, residual, tokens

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
    ("generation", "Generation", generation),
]
