"""Component ids shared between the page skeleton and the views (one place, so a typo is an ImportError)."""

# Prompt bar
PROMPT = "prompt"                  # dcc.Textarea / Input: the prompt text
RUN = "run"                        # button: run the prompt
EXAMPLES = "examples"              # example-prompt chooser
PROMPT_MESSAGE = "prompt-message"  # html.Div: clear messages about the prompt (empty, trimmed, ...)
BANNER = "model-banner"            # untrained-weights banner
APP_ERROR = "app-error"            # html.Div: a request that failed, in words (set by app.report_error)

# Shared state (dcc.Store)
SEQUENCE = "sequence"      # {"ids": [int], "n_prompt": int, "label": str} - the sequence every view shows
GENERATION = "generation"  # the last generation run: see components/generation.py
URL = "url"                # dcc.Location carrying prompt and settings

# Navigation
VIEW = "view"              # dcc.Tabs value: which stage's view is open
BLOCK = "block"            # 0-based block index (shown as 1..n_layer)
HEAD = "head"              # 0-based head index (shown as 1..n_head)

# Sampling controls (always visible: the output and generation views both read them)
TEMPERATURE = "temperature"
TOP_K = "top-k"            # 0 = off
TOP_P = "top-p"
SEED = "seed"
TOP_N = "top-n"            # how many candidates the output chart shows
