"""The stage views, in pipeline order: (tab value, tab label, module). Each module has `section()` (the tab's
content) and `register(app)` (its callbacks); the page skeleton and app.py read this list."""
from . import ablation, attention, decoding, embeddings, heads, logit_lens, mlp, output, residual, tokens
from .i18n import N_

# Tab labels are marked here and translated where the tabs are drawn (layout.page), per request.
VIEWS = [
    ("tokens", N_("Tokens"), tokens),
    ("embeddings", N_("Embeddings"), embeddings),
    ("attention", N_("Attention head"), attention),
    ("heads", N_("All heads"), heads),
    ("mlp", N_("MLP"), mlp),
    ("residual", N_("Residual & LayerNorm"), residual),
    ("logit-lens", N_("Logit lens"), logit_lens),
    ("ablation", N_("Head ablation"), ablation),
    ("output", N_("Next token"), output),
    ("generation", N_("Generation"), decoding),  # sampling, beam search, speculative, int8
]

# Each view's main element: projector mode shows it first, fitted to the screen (Generation keeps its own
# order: its controls come before the text they make).
MAIN = {"tokens": "token-chips", "embeddings": "embedding-heatmap", "attention": "attention-scores",
        "heads": "heads-grid", "mlp": "mlp-pre", "residual": "residual-norms", "logit-lens": "lens-table",
        "ablation": "ablation-picker", "output": "output-candidates"}
