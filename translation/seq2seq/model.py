"""The Transformer encoder-decoder, and the decoding interface it shares with the GRU and the
tutorial's model (`baselines.py`):

    memory, mask = model.encode(src)                    # (B, S, C), (B, S) True at padding
    logits = model.decode(tgt_in, memory, mask)         # (B, T, V): teacher forcing
    state = model.start(memory, mask)                   # a dict of tensors, batch first
    logits, state = model.step(tokens, state)           # (B,) -> (B, V): one cached step

Transformer: pre-norm, tied input/output embeddings (one joint vocabulary), cached keys/values.
"""

import dataclasses
import math

import torch
import torch.nn.functional as F
from torch import nn

from translation.seq2seq.tokenizer import PAD


@dataclasses.dataclass
class Seq2SeqConfig:
    vocab_size: int
    d_model: int = 256
    heads: int = 4
    layers: int = 3
    d_ff: int = 1024
    dropout: float = 0.1
    max_len: int = 256
    """Longest source or target in tokens: the length of the position table (a buffer, not a weight)."""


def sinusoids(length: int, dim: int) -> torch.Tensor:
    """The (length, dim) sinusoidal position table of Vaswani et al."""
    pos = torch.arange(length).unsqueeze(1)
    freq = torch.exp(torch.arange(0, dim, 2) * (-math.log(10_000.0) / dim))
    table = torch.zeros(length, dim)
    table[:, 0::2], table[:, 1::2] = torch.sin(pos * freq), torch.cos(pos * freq)
    return table


class Attention(nn.Module):
    def __init__(self, d: int, heads: int, dropout: float) -> None:
        super().__init__()
        self.heads, self.dropout = heads, dropout
        self.q, self.kv, self.out = nn.Linear(d, d), nn.Linear(d, 2 * d), nn.Linear(d, d)

    def split(self, x: torch.Tensor) -> torch.Tensor:  # (B, T, C) -> (B, H, T, C / H)
        return x.unflatten(-1, (self.heads, -1)).transpose(1, 2)

    def keys_values(self, source: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        k, v = self.kv(source).chunk(2, -1)
        return self.split(k), self.split(v)  # (B, H, S, C / H) each

    def forward(self, x, k, v, mask=None, weights: bool = False):
        """Queries from x (B, T, C) over keys/values (B, H, S, C / H); mask (B|1, 1, T|1, S) True = attend."""
        q = self.split(self.q(x))
        if weights:  # spelled out, for the attention picture
            att = (
                (q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1]))
                .masked_fill(~mask, -torch.inf)
                .softmax(-1)
            )
            return self.out((att @ v).transpose(1, 2).flatten(2)), att.mean(
                1
            )  # (B, T, S) over heads
        p = self.dropout if self.training else 0.0
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=p)  # (B, H, T, C / H)
        return self.out(y.transpose(1, 2).flatten(2))


class Block(nn.Module):
    """A pre-norm layer: self-attention, cross-attention (decoder only), feed-forward."""

    def __init__(self, cfg: Seq2SeqConfig, cross: bool) -> None:
        super().__init__()
        d = cfg.d_model
        self.norm1, self.attn = nn.LayerNorm(d), Attention(d, cfg.heads, cfg.dropout)
        self.norm2 = nn.LayerNorm(d) if cross else None
        self.cross = Attention(d, cfg.heads, cfg.dropout) if cross else None
        self.norm3 = nn.LayerNorm(d)
        self.ff = nn.Sequential(
            nn.Linear(d, cfg.d_ff), nn.GELU(), nn.Dropout(cfg.dropout), nn.Linear(cfg.d_ff, d)
        )
        self.drop = nn.Dropout(cfg.dropout)

    def forward(self, x, self_kv, self_mask, cross_kv=None, cross_mask=None):
        x = x + self.drop(self.attn(self.norm1(x), *self_kv, self_mask))
        if self.cross is not None:
            x = x + self.drop(self.cross(self.norm2(x), *cross_kv, cross_mask))
        return x + self.drop(self.ff(self.norm3(x)))


class Transformer(nn.Module):
    def __init__(self, cfg: Seq2SeqConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.embed = nn.Embedding(
            cfg.vocab_size, cfg.d_model, padding_idx=PAD
        )  # also the output layer
        nn.init.normal_(self.embed.weight, std=cfg.d_model**-0.5)
        self.register_buffer("positions", sinusoids(cfg.max_len, cfg.d_model), persistent=False)
        self.encoder = nn.ModuleList(Block(cfg, cross=False) for _ in range(cfg.layers))
        self.decoder = nn.ModuleList(Block(cfg, cross=True) for _ in range(cfg.layers))
        self.enc_norm, self.dec_norm = nn.LayerNorm(cfg.d_model), nn.LayerNorm(cfg.d_model)
        self.drop = nn.Dropout(cfg.dropout)

    def embed_at(self, tokens: torch.Tensor, start: int = 0) -> torch.Tensor:
        x = self.embed(tokens) * math.sqrt(self.cfg.d_model)  # (B, T, C)
        return self.drop(x + self.positions[start : start + tokens.shape[1]])

    def encode(self, src: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        pad = src == PAD  # (B, S)
        mask = ~pad[:, None, None, :]  # (B, 1, 1, S)
        x = self.embed_at(src)
        for block in self.encoder:
            x = block(x, block.attn.keys_values(block.norm1(x)), mask)
        return self.enc_norm(x), pad

    def decode(
        self, tgt: torch.Tensor, memory: torch.Tensor, pad: torch.Tensor, weights: bool = False
    ):
        t = tgt.shape[1]
        causal = torch.ones(t, t, dtype=torch.bool, device=tgt.device).tril()[
            None, None
        ]  # (1, 1, T, T)
        cross_mask = ~pad[:, None, None, :]
        x = self.embed_at(tgt)
        for i, block in enumerate(self.decoder):
            cross_kv = block.cross.keys_values(memory)
            if (
                weights and i == len(self.decoder) - 1
            ):  # the last layer's cross-attention, for the picture
                h = x + block.attn(block.norm1(x), *block.attn.keys_values(block.norm1(x)), causal)
                _, att = block.cross(block.norm2(h), *cross_kv, cross_mask, weights=True)
            x = block(x, block.attn.keys_values(block.norm1(x)), causal, cross_kv, cross_mask)
        logits = self.dec_norm(x) @ self.embed.weight.T  # (B, T, V) tied output layer
        return (logits, att) if weights else logits

    def forward(self, src: torch.Tensor, tgt: torch.Tensor) -> torch.Tensor:
        return self.decode(tgt, *self.encode(src))

    def start(self, memory: torch.Tensor, pad: torch.Tensor) -> dict[str, torch.Tensor]:
        state = {"mask": ~pad[:, None, None, :]}
        b, h = memory.shape[0], self.cfg.heads  # shape, not len(): export keeps the batch dynamic
        for i, block in enumerate(self.decoder):
            state[f"ck{i}"], state[f"cv{i}"] = block.cross.keys_values(memory)  # computed once
            empty = memory.new_zeros(b, h, 0, self.cfg.d_model // h)
            state[f"k{i}"], state[f"v{i}"] = empty, empty
        return state

    def step(self, tokens: torch.Tensor, state: dict) -> tuple[torch.Tensor, dict]:
        t = state["k0"].shape[2]
        x = self.embed_at(tokens[:, None], start=t)  # (B, 1, C)
        state = dict(state)
        for i, block in enumerate(self.decoder):
            k, v = block.attn.keys_values(block.norm1(x))
            state[f"k{i}"] = torch.cat([state[f"k{i}"], k], 2)  # (B, H, t + 1, C / H)
            state[f"v{i}"] = torch.cat([state[f"v{i}"], v], 2)
            x = block(
                x,
                (state[f"k{i}"], state[f"v{i}"]),
                None,
                (state[f"ck{i}"], state[f"cv{i}"]),
                state["mask"],
            )
        return (self.dec_norm(x) @ self.embed.weight.T)[:, 0], state  # (B, V)


def build_model(name: str, vocab_size: int, cfg: dict) -> nn.Module:
    """The model `name` ("transformer", "gru" or "tutorial") for a vocabulary of `vocab_size`."""
    from translation.seq2seq.baselines import GRU, GRUConfig, Tutorial  # they build on this file

    if name == "gru":
        return GRU(GRUConfig(vocab_size, cfg["emb"], cfg["hidden"], cfg["dropout"]))
    shape = Seq2SeqConfig(
        vocab_size,
        cfg["d_model"],
        cfg["heads"],
        cfg["layers"],
        cfg["d_ff"],
        cfg["dropout"],
        cfg["max_len"],
    )
    return Tutorial(shape) if name == "tutorial" else Transformer(shape)


def seq2seq_loss(logits: torch.Tensor, targets: torch.Tensor, smoothing: float) -> torch.Tensor:
    """Label-smoothed cross-entropy over the non-padding target tokens."""
    return F.cross_entropy(
        logits.flatten(0, 1).float(), targets.flatten(), ignore_index=PAD, label_smoothing=smoothing
    )
