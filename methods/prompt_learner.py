"""CoOp's learnable prompts: a prompt learner and CLIP's text tower run on prompt embeddings.

Plain torch over an open_clip ``CLIP`` model (no trainer imports), so the same modules plug
into a Dassl / CoOp checkout. The prompt of class ``c`` is ``[SOS] ctx_1..ctx_M name_c . [EOS]``
with the class name at the end, front or middle; only the context vectors are learned.
"""
import copy

import torch
import torch.nn.functional as F
from torch import nn

from .zero_shot import clip_logits

CLASS_TOKEN_POSITIONS = ("end", "middle", "front")


class TextEncoder(nn.Module):
    """CLIP's text tower from the token-embedding output on: positional embedding, causal
    transformer, final LayerNorm, the feature at the EOT token (the argmax token id, as CLIP
    pools), projection. It shares the CLIP model's (frozen) modules."""

    def __init__(self, clip_model):
        super().__init__()
        if not hasattr(clip_model, "token_embedding") or getattr(clip_model, "text_pool_type", "") != "argmax":
            raise ValueError(f"CoOp needs an open_clip CLIP model with its own text transformer and EOT (argmax) "
                             f"pooling; {type(clip_model).__name__} has none (e.g. SigLIP / CoCa / HF text towers)")
        self.transformer = clip_model.transformer
        self.positional_embedding = clip_model.positional_embedding
        self.ln_final = clip_model.ln_final
        self.text_projection = clip_model.text_projection
        self.register_buffer("attn_mask", clip_model.attn_mask, persistent=False)

    @property
    def dtype(self):
        return self.positional_embedding.dtype

    def forward(self, prompts, tokenized_prompts):
        """``prompts [C, L, D]`` (embeddings), ``tokenized_prompts [C, L]`` (ids, for the EOT
        position) -> ``[C, d]`` text features, not normalised."""
        x = prompts.to(self.dtype) + self.positional_embedding.to(self.dtype)
        x = self.transformer(x, attn_mask=self.attn_mask)  # open_clip's transformer takes [N, L, D]
        x = self.ln_final(x)
        x = x[torch.arange(x.shape[0], device=x.device), tokenized_prompts.argmax(dim=-1)]
        if isinstance(self.text_projection, nn.Linear):
            return self.text_projection(x)
        return x if self.text_projection is None else x @ self.text_projection


def text_encoder(clip_model, dtype):
    """A ``TextEncoder`` in ``dtype``: shares the CLIP model's modules when they already have
    that precision, else a private converted copy (the shared model also encodes images)."""
    encoder = TextEncoder(clip_model)
    return encoder if encoder.dtype == dtype else copy.deepcopy(encoder).to(dtype)


def eot_positions(tokens):
    """Position of the EOT token in each row of ``tokens`` (CLIP: the largest id)."""
    return tokens.argmax(dim=-1)


class PromptLearner(nn.Module):
    """CoOp's context vectors and the fixed token embeddings of each class's prompt.

    ``ctx`` is the only parameter (``[M, D]`` shared, ``[C, M, D]`` class-specific). The class
    buffers (``token_prefix`` = SOS, ``token_suffix`` = name, ".", EOS, padding) depend on the
    class names, so they are rebuilt from the current names and never saved (non-persistent).
    ``forward()`` returns the prompt embeddings ``[C, L, D]`` in the chosen layout, and
    ``tokenized_prompts [C, L]`` holds the matching token ids (the placeholder "X" or the
    CTX_INIT words at context positions).
    """

    def __init__(self, classnames, tokenizer, token_embedding, n_ctx=16, ctx_init="", csc=False,
                 class_token_position="end", dtype=torch.float32):
        super().__init__()
        if class_token_position not in CLASS_TOKEN_POSITIONS:
            raise ValueError(f"TRAINER.COOP.CLASS_TOKEN_POSITION must be one of {CLASS_TOKEN_POSITIONS}, "
                             f"got {class_token_position!r}")
        n_cls = len(classnames)
        ctx_dim = token_embedding.weight.shape[1]
        embed = token_embedding.weight.device

        def embedding(tokens):
            with torch.no_grad():
                return token_embedding(tokens.to(embed)).to(dtype).cpu()

        if ctx_init:
            ctx_init = ctx_init.replace("_", " ")
            init_tokens = tokenizer([ctx_init])
            n_ctx = int(eot_positions(init_tokens)[0]) - 1  # tokens, not words (CoOp counts words)
            ctx_vectors = embedding(init_tokens)[0, 1:1 + n_ctx]
            if csc:
                ctx_vectors = ctx_vectors.expand(n_cls, -1, -1).clone()
            prompt_prefix = ctx_init
        else:
            if n_ctx < 1:
                raise ValueError(f"TRAINER.COOP.N_CTX must be >= 1, got {n_ctx}")
            ctx_vectors = torch.empty((n_cls, n_ctx, ctx_dim) if csc else (n_ctx, ctx_dim), dtype=dtype)
            nn.init.normal_(ctx_vectors, std=0.02)
            prompt_prefix = " ".join(["X"] * n_ctx)
        self.ctx = nn.Parameter(ctx_vectors)
        self.n_cls, self.n_ctx, self.prompt_prefix = n_cls, n_ctx, prompt_prefix
        self.class_token_position = class_token_position

        names = [name.replace("_", " ") for name in classnames]
        self.name_lens = [int(n) - 1 for n in eot_positions(tokenizer(names))]
        source = tokenizer([f"{prompt_prefix} {name}." for name in names])  # class at the end
        length = source.shape[1]
        for name, name_len in zip(names, self.name_lens):
            if 1 + n_ctx + name_len + 2 > length:
                raise ValueError(f"the prompt of class {name!r} needs {n_ctx + name_len + 3} tokens, more than the "
                                 f"text encoder's context length {length}: lower TRAINER.COOP.N_CTX")
        tokens = embedding(source)
        self.register_buffer("token_prefix", tokens[:, :1], persistent=False)  # SOS
        self.register_buffer("token_suffix", tokens[:, 1 + n_ctx:], persistent=False)  # name, ".", EOS
        order = torch.stack([layout_order(n_ctx, k, length, class_token_position) for k in self.name_lens])
        self.register_buffer("order", order, persistent=False)
        self.register_buffer("tokenized_prompts", source.gather(1, order), persistent=False)

    def forward(self):
        ctx = self.ctx if self.ctx.dim() == 3 else self.ctx.unsqueeze(0).expand(self.n_cls, -1, -1)
        end_layout = torch.cat([self.token_prefix, ctx, self.token_suffix], dim=1)
        return end_layout.gather(1, self.order.unsqueeze(-1).expand(-1, -1, end_layout.shape[-1]))


def layout_order(n_ctx, name_len, length, position):
    """Where each prompt position takes its token from in the end layout
    ``[SOS, ctx_1..ctx_M, name, ".", EOS, pad...]`` (CoOp: middle splits the context at M // 2)."""
    ctx = torch.arange(1, 1 + n_ctx)
    name = torch.arange(1 + n_ctx, 1 + n_ctx + name_len)
    rest = torch.arange(1 + n_ctx + name_len, length)
    sos = torch.zeros(1, dtype=torch.long)
    if position == "end":
        parts = [sos, ctx, name, rest]
    elif position == "front":
        parts = [sos, name, ctx, rest]
    else:
        half = n_ctx // 2
        parts = [sos, ctx[:half], name, ctx[half:], rest]
    return torch.cat(parts)


def coop_logits(image_features, text_features, logit_scale):
    """``logit_scale * norm(image) @ norm(text).T``, computed in fp32."""
    return clip_logits(image_features.float(), F.normalize(text_features.float(), dim=-1), logit_scale)
