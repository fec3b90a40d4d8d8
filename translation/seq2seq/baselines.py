"""The two other encoder-decoders behind the Transformer's decoding interface (`model.py`):

- GRU: a bidirectional GRU encoder and a GRU decoder with additive (Bahdanau) attention.
- Tutorial: PyTorch's "Language Translation with nn.Transformer" model (the benchmark's peer);
  like the tutorial, it decodes by running the whole prefix again at every step.
"""

import dataclasses
import math

import torch
from torch import nn

from translation.seq2seq.model import Seq2SeqConfig, sinusoids
from translation.seq2seq.tokenizer import PAD

TUTORIAL_RECIPE = {
    "d_model": 512,
    "heads": 8,
    "layers": 3,
    "d_ff": 512,
    "dropout": 0.1,
    "lr": 1e-4,
    "weight_decay": 0.0,
    "batch_size": 128,
    "max_tokens": 0,
    "label_smoothing": 0.0,
    "schedule": "constant",
    "warmup_steps": 0,
    "grad_clip": 0.0,
    "beam": 1,
}
"""The peer's training recipe (`--model tutorial`): PyTorch's "Language Translation with
nn.Transformer": emb 512, 3+3 layers, 8 heads, FFN 512, Adam 1e-4 with betas (0.9, 0.98), batch
128, plain cross-entropy, greedy decoding."""


@dataclasses.dataclass
class GRUConfig:
    vocab_size: int
    emb: int = 256
    hidden: int = 256
    """Encoder GRU width per direction; the decoder's is twice this."""
    dropout: float = 0.2


class GRU(nn.Module):
    """Bahdanau et al. (2015): score(s, h_j) = v^T tanh(W s + U h_j) over the encoder states h_j."""

    def __init__(self, cfg: GRUConfig) -> None:
        super().__init__()
        h2 = 2 * cfg.hidden
        self.embed = nn.Embedding(cfg.vocab_size, cfg.emb, padding_idx=PAD)
        self.encoder = nn.GRU(cfg.emb, cfg.hidden, batch_first=True, bidirectional=True)
        self.bridge = nn.Linear(h2, h2)
        self.w, self.u, self.v = (
            nn.Linear(h2, h2, bias=False),
            nn.Linear(h2, h2),
            nn.Linear(h2, 1, bias=False),
        )
        self.cell = nn.GRUCell(cfg.emb + h2, h2)
        self.out = nn.Linear(h2 + h2 + cfg.emb, cfg.vocab_size)
        self.drop = nn.Dropout(cfg.dropout)

    def encode(self, src: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        lengths = (src != PAD).sum(1).clamp(min=1).cpu()
        packed = nn.utils.rnn.pack_padded_sequence(
            self.drop(self.embed(src)), lengths, batch_first=True, enforce_sorted=False
        )
        states, _ = self.encoder(packed)
        memory, _ = nn.utils.rnn.pad_packed_sequence(
            states, batch_first=True, total_length=src.shape[1]
        )
        return memory, src == PAD  # (B, S, 2H), (B, S)

    def start(self, memory: torch.Tensor, pad: torch.Tensor) -> dict[str, torch.Tensor]:
        mean = (memory * ~pad[..., None]).sum(1) / (~pad).sum(1, keepdim=True).clamp(min=1)
        return {
            "h": torch.tanh(self.bridge(mean)),
            "memory": memory,
            "keys": self.u(memory),
            "pad": pad,
        }

    def attend(self, h: torch.Tensor, state: dict) -> tuple[torch.Tensor, torch.Tensor]:
        energy = self.v(torch.tanh(self.w(h)[:, None] + state["keys"])).squeeze(-1)  # (B, S)
        att = energy.masked_fill(state["pad"], -torch.inf).softmax(-1)
        return (att[:, :, None] * state["memory"]).sum(1), att  # (B, 2H), (B, S)

    def step(self, tokens: torch.Tensor, state: dict, weights: bool = False):
        e = self.drop(self.embed(tokens))  # (B, E)
        context, att = self.attend(state["h"], state)
        h = self.cell(torch.cat([e, context], -1), state["h"])
        logits = self.out(self.drop(torch.cat([h, context, e], -1)))  # (B, V)
        state = {**state, "h": h}
        return (logits, state, att) if weights else (logits, state)

    def decode(
        self, tgt: torch.Tensor, memory: torch.Tensor, pad: torch.Tensor, weights: bool = False
    ):
        state, steps, maps = self.start(memory, pad), [], []
        for t in range(tgt.shape[1]):  # teacher forcing: a recurrence runs one token at a time
            logits, state, att = self.step(tgt[:, t], state, weights=True)
            steps.append(logits)
            maps.append(att)
        logits = torch.stack(steps, 1)  # (B, T, V)
        return (logits, torch.stack(maps, 1)) if weights else logits

    def forward(self, src: torch.Tensor, tgt: torch.Tensor) -> torch.Tensor:
        return self.decode(tgt, *self.encode(src))


class Tutorial(nn.Module):
    """The tutorial's Seq2SeqTransformer: nn.Transformer (post-norm), separate source and target
    embeddings scaled by sqrt(d), sinusoidal positions, a linear generator."""

    def __init__(self, cfg: Seq2SeqConfig) -> None:
        super().__init__()
        d = cfg.d_model
        self.transformer = nn.Transformer(
            d, cfg.heads, cfg.layers, cfg.layers, cfg.d_ff, cfg.dropout, batch_first=True
        )
        self.src_embed, self.tgt_embed = (
            nn.Embedding(cfg.vocab_size, d),
            nn.Embedding(cfg.vocab_size, d),
        )
        self.generator = nn.Linear(d, cfg.vocab_size)
        self.register_buffer("positions", sinusoids(cfg.max_len, d), persistent=False)
        self.drop, self.d = nn.Dropout(cfg.dropout), d
        for p in self.parameters():  # the tutorial's initialisation
            if p.dim() > 1:
                nn.init.xavier_uniform_(p)

    def embed(self, table: nn.Embedding, tokens: torch.Tensor) -> torch.Tensor:
        return self.drop(table(tokens) * math.sqrt(self.d) + self.positions[: tokens.shape[1]])

    def encode(self, src):
        pad = src == PAD
        return self.transformer.encoder(
            self.embed(self.src_embed, src), src_key_padding_mask=pad
        ), pad

    def decode(self, tgt, memory, pad, weights: bool = False):
        causal = nn.Transformer.generate_square_subsequent_mask(tgt.shape[1], device=tgt.device)
        x = self.transformer.decoder(
            self.embed(self.tgt_embed, tgt), memory, tgt_mask=causal, memory_key_padding_mask=pad
        )
        return self.generator(x)

    def forward(self, src, tgt):
        return self.decode(tgt, *self.encode(src))

    def start(self, memory, pad):
        return {
            "memory": memory,
            "pad": pad,
            "prefix": memory.new_zeros(len(memory), 0, dtype=torch.long),
        }

    def step(self, tokens, state):
        prefix = torch.cat([state["prefix"], tokens[:, None]], 1)
        logits = self.decode(prefix, state["memory"], state["pad"])[:, -1]  # the whole prefix again
        return logits, {**state, "prefix": prefix}
