"""The lesson, step by step, in pipeline order. A step is data: what it says, the app state it puts the page in
(prompt, tab, block/head, sliders), the element it highlights, a task checked from the page's state, and
optionally a question the learner answers before the model's own answer is revealed."""
from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlencode

from .. import ids
from ..i18n import N_
from . import tasks
from .questions import Question

# Every setting a step's link carries; a step that does not name one takes the app's default, so going back
# to a step resets the sliders it talks about.
DEFAULT_STATE = {"temperature": 1.0, "top_k": 0, "top_p": 1.0, "seed": 0, "top_n": 20, "block": 0, "head": 0}
LAST = "last"  # a block index that means the loaded model's last block (12 blocks in GPT-2 small, 2 in a test model)


@dataclass(frozen=True)
class Step:
    """Its text is marked with N_ here and translated where it is shown (lesson/panel.py), per request."""
    title: str
    text: str                  # two to four sentences, Markdown (our own text)
    state: dict                # prompt, view, and any of DEFAULT_STATE's keys
    highlight: str             # id of the control or figure the step talks about
    task: tasks.Task
    equation: str | None = None
    question: Question | None = None
    trained_only: str | None = None  # shown on untrained weights: why the step's claim may not show there


def settings(step: Step, n_layer: int) -> dict:
    """The complete app state a step sets: prompt, view and every control (blocks resolved for this model: LAST
    is its last block, and a block it does not have is its last)."""
    out = {**DEFAULT_STATE, **step.state}
    out["block"] = n_layer - 1 if out["block"] == LAST else min(out["block"], n_layer - 1)  # smaller test models
    return out


def query(index: int, n_layer: int) -> str:
    """The address-bar query that opens step `index` (0-based) with its state: `?prompt=...&view=...&lesson=N`
    (1-based in the address bar, as people count)."""
    return "?" + urlencode({**settings(STEPS[index], n_layer), "lesson": index + 1})


ATTN_PROMPT = "When Mary and John went to the store, John gave a drink to"
CAPITAL = "The capital of France is"
TRAINED_PATTERNS = (N_("On untrained weights no head has learned a pattern: every head looks roughly alike, so pick "
                       "the head the statistics rank first; the task accepts it."))
TRAINED_GUESS = (N_("On untrained weights the model's guesses are noise (the banner says so): the numbers are still "
                    "real, the answer is still computed from them."))

STEPS = [
    Step(N_("Text becomes tokens"),
         N_("GPT-2 never sees letters. Its tokenizer cuts the text into **tokens**, pieces from a fixed list of "
            "50,257, and the model works with their ids. A space usually belongs to the word after it (shown as ␣)."),
         {"prompt": "Data visualization empowers users to", "view": "tokens"}, "token-chips",
         tasks.Task(N_("Type a prompt of your own and run it (Enter)."), tasks.prompt_changed)),
    Step(N_("Words in pieces"),
         N_("Common words are one token; rarer words are cut into several pieces the tokenizer knows. The model has "
            "to put the meaning of such a word together from its pieces."),
         {"prompt": "Tokenization turns a kaleidoscope of text into pieces", "view": "tokens"}, "token-chips",
         tasks.Task(N_("Run a prompt with a word that becomes four or more tokens."), tasks.word_in_pieces(4)),
         question=Question("token_count", {"word": " kaleidoscope"})),
    Step(N_("Token embeddings"),
         N_("Each token id picks one row of a 50,257 × 768 table: its **token embedding**, 768 numbers learned in "
            "training. The same token always gets the same row, wherever it stands."),
         {"prompt": "The cat sat on the mat because the cat was tired", "view": "embeddings"}, "embedding-heatmap",
         tasks.Task(N_("Run a prompt in which one word appears twice, and find its two identical rows."),
                    tasks.repeated_token),
         equation=r"e_i = W_E[\mathrm{id}_i]"),
    Step(N_("Position embeddings"),
         N_("A row of a second table, one row per position (1,024 of them), is added to each token's row. Without "
            "it, the model could not tell *the cat saw the dog* from *the dog saw the cat*."),
         {"prompt": "The cat sat on the mat because the cat was tired", "view": "embeddings"}, "embedding-part",
         tasks.Task(N_("Run a prompt of at least 12 tokens."), tasks.min_tokens(12)),
         equation=r"x_i = W_E[\mathrm{id}_i] + W_P[i]"),
    Step(N_("Queries, keys and values"),
         N_("In each block, each of 12 **heads** turns every token's vector into three smaller ones of 64 numbers: a "
            "query (what am I looking for?), a key (what do I offer?) and a value (what do I pass on?). Queries and "
            "keys decide who looks at whom; values carry what is passed along."),
         {"prompt": ATTN_PROMPT, "view": "attention", "block": 0, "head": 0}, "attention-qkv",
         tasks.Task(N_("Open another head of this block."), tasks.head_changed),
         equation=r"q_i = x_i W_Q,\quad k_i = x_i W_K,\quad v_i = x_i W_V"),
    Step(N_("Scores, scaling, the mask, softmax"),
         N_("Each query is compared with every key (a dot product), divided by √64 = 8, and the future is masked "
            "out: a token may only look back. A softmax turns each row of scores into weights that sum to 1."),
         {"prompt": ATTN_PROMPT, "view": "attention", "block": 0, "head": 0}, "attention-scores",
         tasks.Task(N_("Open a head in the last block."), tasks.block_is(LAST)),
         equation=r"A = \mathrm{softmax}\!\left(\frac{QK^\top}{\sqrt{64}} + M\right)"),
    Step(N_("The weighted sum, and heads put together"),
         N_("Each token's output from a head is the average of the values, weighted by its attention. The 12 heads' "
            "outputs are set side by side (12 × 64 = 768) and projected back into the residual stream."),
         {"prompt": ATTN_PROMPT, "view": "attention", "block": 4, "head": 0}, "attention-output",
         tasks.Task(N_("Look at another block's heads."), tasks.block_changed),
         equation=r"z_i = \sum_j A_{ij} v_j,\qquad \mathrm{attn}(x) = [z^{(1)} \dots z^{(12)}]\, W_O"),
    Step(N_("All heads: find a previous-token head"),
         N_("The grid shows every head's pattern at once. Some heads have learned simple jobs: looking at the first "
            "token, at themselves, or at the token just before, a diagonal just below the main one."),
         {"prompt": ATTN_PROMPT, "view": "heads"}, "heads-grid",
         tasks.Task(N_("Open (click) a head whose pattern is a diagonal just below the main one."),
                    tasks.previous_token_head),
         question=Question("previous_head", {"prompt": ATTN_PROMPT}), trained_only=TRAINED_PATTERNS),
    Step(N_("The MLP"),
         N_("After attention, each token goes alone through a small network: 768 numbers are expanded to 3,072, bent "
            "by GELU (negative values squashed towards 0) and brought back to 768. Two thirds of GPT-2's parameters "
            "sit in these MLPs."),
         {"prompt": "The Eiffel Tower is located in the city of", "view": "mlp", "block": 0}, "mlp-gelu",
         tasks.Task(N_("Open the MLP of the last block."), tasks.block_is(LAST)),
         equation=r"\mathrm{mlp}(x) = \mathrm{GELU}(x W_1 + b_1)\, W_2 + b_2"),
    Step(N_("The residual stream"),
         N_("Attention and the MLP do not replace a token's vector: each *adds* its output to it. This running sum "
            "is the residual stream, and every block reads from it and writes to it."),
         {"prompt": "The Eiffel Tower is located in the city of", "view": "residual", "block": 0},
         "residual-norms",
         tasks.Task(N_("Choose a block after the first to see what it writes."), tasks.block_changed),
         equation=r"x \leftarrow x + \mathrm{attn}(\mathrm{LN}_1(x)),\quad x \leftarrow x + \mathrm{mlp}(\mathrm{LN}_2(x))",
         question=Question("residual_growth", {"prompt": "The Eiffel Tower is located in the city of"})),
    Step(N_("LayerNorm"),
         N_("Before attention and before the MLP, each token's vector is normalised: its mean is subtracted and it "
            "is divided by its spread, then scaled and shifted by learned numbers. This keeps the sizes in check "
            "whatever the stream has grown to."),
         {"prompt": "The Eiffel Tower is located in the city of", "view": "residual", "block": 0},
         "residual-layernorm",
         tasks.Task(N_("Look at the LayerNorm of the last block."), tasks.block_is(LAST)),
         equation=r"\mathrm{LN}(x) = \gamma \odot \frac{x - \mu}{\sigma} + \beta"),
    Step(N_("The logit lens"),
         N_("We can read the residual stream after any block as if it were the last: final LayerNorm, then the "
            "output head. The table shows each block's best guess for the next token, so you can watch the answer "
            "form."),
         {"prompt": CAPITAL, "view": "logit-lens"}, "lens-table",
         tasks.Task(N_("Run a prompt of your own and find where its guess settles."), tasks.prompt_changed),
         question=Question("lens_first_block", {"prompt": CAPITAL}), trained_only=TRAINED_GUESS),
    Step(N_("The next-token distribution"),
         N_("The last token's vector is multiplied by the token table again, giving one score (**logit**) per token "
            "in the vocabulary. A softmax turns the 50,257 scores into probabilities that add up to 1."),
         {"prompt": CAPITAL, "view": "output"}, "output-candidates",
         tasks.Task(N_("Show more candidates (the 'Candidates shown' slider) to see the long tail."),
                    tasks.setting_above("top_n", 20)),
         equation=r"p = \mathrm{softmax}(\mathrm{LN}(x_T)\, W_E^\top)",
         question=Question("next_top", {"prompt": CAPITAL}), trained_only=TRAINED_GUESS),
    Step(N_("Temperature"),
         N_("Before the softmax, the logits are divided by the temperature. Below 1 the distribution gets sharper "
            "(the favourite gains), above 1 flatter; at 0 the model always takes the top token."),
         {"prompt": CAPITAL, "view": "output"}, ids.TEMPERATURE,
         tasks.Task(N_("Move the temperature below 0.5."), tasks.setting_below("temperature", 0.5)),
         equation=r"p_i = \frac{e^{z_i / T}}{\sum_j e^{z_j / T}}",
         question=Question("temperature_top", {"prompt": CAPITAL, "temperature": 0.3})),
    Step(N_("Top-k"),
         N_("Top-k keeps only the k most likely tokens and shares out the probability among them. Everything else "
            "can no longer be drawn, however the rest of the distribution looks."),
         {"prompt": CAPITAL, "view": "output"}, ids.TOP_K,
         tasks.Task(N_("Set top-k to 10 or less."), tasks.top_k_at_most(10))),
    Step(N_("Top-p (nucleus)"),
         N_("Top-p keeps the smallest set of most likely tokens whose probabilities add up to at least p. When the "
            "model is sure, that set is small; when it is unsure, it is large."),
         {"prompt": CAPITAL, "view": "output"}, ids.TOP_P,
         tasks.Task(N_("Move top-p to 0.9 or below."), tasks.setting_below("top_p", 0.9001)),
         question=Question("top_p_count", {"prompt": CAPITAL, "top_p": 0.9})),
    Step(N_("Generation, one token at a time"),
         N_("To write text, GPT-2 draws a token, appends it and runs again. The **KV cache** keeps every earlier "
            "token's keys and values, so each new step only computes the newest token."),
         {"prompt": "Once upon a time there was a", "view": "generation", "temperature": 0.8, "top_k": 40},
         "gen-run",
         tasks.Task(N_("Generate some tokens with the KV cache on."), tasks.generated(use_cache=True)),
         equation=r"x_{T+1} \sim p(\cdot \mid x_1 \dots x_T)"),
    Step(N_("Prefill, then decode"),
         N_("The first step (**prefill**) reads the whole prompt at once; each later step (**decode**) reads one "
            "token. Without the cache every step would re-read the whole text, and the timings show what that costs."),
         {"prompt": "Once upon a time there was a", "view": "generation", "temperature": 0.8, "top_k": 40},
         "gen-timings",
         tasks.Task(N_("Generate once more without the KV cache, and compare the time per token."),
                    tasks.generated(use_cache=False))),
]
