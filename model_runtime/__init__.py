"""A from-scratch GPT-2 whose every stage can be captured: `load_gpt2(...)`, then `.trace(...)` / `.generate(...)`."""
from .config import FAMILY, GPT2Config
from .runtime import GPT2Runtime, PromptError, load_gpt2
from .trace import Trace

__all__ = ["FAMILY", "GPT2Config", "GPT2Runtime", "PromptError", "Trace", "load_gpt2"]
