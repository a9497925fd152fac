"""How a text longer than CLIP's context (77 tokens) becomes token windows to encode.

- ``truncate``: CLIP's own behaviour, the first context-length tokens (about 60 words);
- ``chunk_mean`` (default): the whole text cut into consecutive windows of context - 2 BPE
  tokens (each wrapped in start/end tokens), encoded separately and averaged after L2
  normalisation: every word counts, at about one encoder pass per 75 tokens;
- ``sentence_mean``: one window per sentence, averaged the same way.
At most FEATURES.MAX_TEXT_CHUNKS windows per text are kept (the first ones).
"""
import re

import torch

LONG_TEXT_MODES = ("truncate", "chunk_mean", "sentence_mean")
SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


def text_windows(tokenizer, text, mode, max_chunks):
    """``[n, context_length]`` token ids of the windows of one text (n >= 1)."""
    if mode == "truncate":
        return tokenizer([text])
    if mode == "sentence_mean":
        sentences = [s for s in SENTENCE_END.split(text.strip()) if s] or [text]
        return tokenizer(sentences[:max_chunks])
    if mode == "chunk_mean":
        if not all(hasattr(tokenizer, a) for a in ("encode", "sot_token_id", "eot_token_id", "context_length")):
            raise ValueError("FEATURES.LONG_TEXT chunk_mean needs CLIP's BPE tokenizer; this backbone's tokenizer "
                             "is different: use truncate or sentence_mean")
        ids = tokenizer.encode(text)
        width = tokenizer.context_length - 2
        chunks = [ids[i:i + width] for i in range(0, max(len(ids), 1), width)][:max_chunks]
        out = torch.zeros(len(chunks), tokenizer.context_length, dtype=torch.long)
        for row, chunk in enumerate(chunks):
            tokens = [tokenizer.sot_token_id, *chunk, tokenizer.eot_token_id]
            out[row, :len(tokens)] = torch.tensor(tokens)
        return out
    raise ValueError(f"FEATURES.LONG_TEXT must be one of {LONG_TEXT_MODES}, got {mode!r}")


def mean_of_windows(window_features, counts):
    """Per text, the mean of its windows' L2-normalised features (``counts`` windows each)."""
    normalised = torch.nn.functional.normalize(window_features, dim=-1)
    return torch.stack([part.mean(0) for part in normalised.split(counts)])
