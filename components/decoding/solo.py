"""Solo runs beside the engine's batch: beam search, speculative decoding and the weights comparison run in this
web process on its own model (each forward pass takes the model's lock, so they interleave with the engine's
steps), one at a time per process, bounded in tokens and seconds like a generation."""
from __future__ import annotations

import threading
from contextlib import contextmanager

from .. import generation, state
from ..i18n import _

MAX_NEW_TOKENS = state.EngineHolder.MAX_NEW_TOKENS
MAX_SECONDS = state.EngineHolder.MAX_SECONDS
WAIT_S = 2.0  # how long a second run waits for the first before it is told to come back

_slot = threading.Lock()


@contextmanager
def solo_slot():
    """One solo run at a time in this process: a class pressing "Search" together queues for at most WAIT_S,
    then gets a message instead of a worker held for minutes."""
    if not _slot.acquire(timeout=WAIT_S):
        raise ValueError(_("another beam search, speculative run or weights comparison is running on this "
                           "server; try again in a few seconds."))
    try:
        yield
    finally:
        _slot.release()


def prompt_ids(sequence, prompt) -> list[int]:
    """The prompt a solo run continues, taken as Generate takes it (the prompt part of the sequence on screen,
    else the prompt box), with room for new tokens."""
    if isinstance(sequence, dict) and sequence.get("ids"):
        ids = generation.prompt_of(sequence)
    else:
        new_sequence, why = state.prompt_to_sequence(prompt)
        if new_sequence is None:
            raise ValueError(why)
        ids = new_sequence["ids"]
    generation.checked_room(state.model.get(), ids)
    return ids

