"""Greedy and beam search, batched over sentences, through the models' cached `step`.

The beam state is the model's own state dict with batch * beam rows; choosing the surviving
hypotheses is one index into every tensor of it. Hypotheses are ranked by their log-probability
divided by GNMT's length penalty ((5 + length) / 6) ** alpha; a finished one keeps its score.
"""

import torch

from translation.seq2seq.tokenizer import BOS, EOS, PAD


def strip(tokens: torch.Tensor) -> list[list[int]]:
    """Rows of token ids (B, T) cut before their first </s> (and without padding)."""
    out = []
    for row in tokens.tolist():
        row = row[: row.index(EOS)] if EOS in row else row
        out.append([t for t in row if t != PAD])
    return out


@torch.no_grad()
def greedy(model, src: torch.Tensor, max_len: int) -> list[list[int]]:
    """The most likely next token at every step, for a batch of source ids (B, S)."""
    state = model.start(*model.encode(src))
    tokens = torch.full((len(src),), BOS, dtype=torch.long, device=src.device)
    done = torch.zeros(len(src), dtype=torch.bool, device=src.device)
    out = []
    for _ in range(max_len):
        logits, state = model.step(tokens, state)
        tokens = logits.argmax(-1).masked_fill(done, PAD)
        out.append(tokens)
        done |= tokens == EOS
        if done.all():
            break
    return strip(torch.stack(out, 1))


def length_penalty(length: torch.Tensor, alpha: float) -> torch.Tensor:
    return ((5.0 + length) / 6.0) ** alpha


@torch.no_grad()
def beam_search(
    model, src: torch.Tensor, beam: int = 5, max_len: int = 100, alpha: float = 0.6
) -> list[list[int]]:
    """The best of `beam` hypotheses per sentence, all sentences of the batch at once."""
    b, device = len(src), src.device
    state = model.start(*model.encode(src))
    state = {k: v.repeat_interleave(beam, 0) for k, v in state.items()}  # (B * beam, ...)
    scores = torch.full((b, beam), -torch.inf, device=device)
    scores[:, 0] = 0.0  # one live hypothesis to start with
    tokens = torch.full((b * beam,), BOS, dtype=torch.long, device=device)
    history = torch.empty(b * beam, 0, dtype=torch.long, device=device)
    finished = torch.zeros(b * beam, dtype=torch.bool, device=device)
    length = torch.zeros(b * beam, device=device)
    for t in range(max_len):
        logits, state = model.step(tokens, state)
        logp = logits.float().log_softmax(-1)  # (B * beam, V)
        vocab = logp.shape[-1]
        logp[finished] = -torch.inf
        logp[finished, PAD] = 0.0  # a finished hypothesis continues with padding, at no cost
        total = scores.view(-1, 1) + logp  # (B * beam, V)
        new_length = torch.where(finished, length, torch.full_like(length, t + 1.0))
        ranked = total / length_penalty(new_length, alpha)[:, None]
        _, idx = ranked.view(b, beam * vocab).topk(beam, -1)  # (B, beam)
        origin = (torch.arange(b, device=device)[:, None] * beam + idx // vocab).flatten()
        tokens = (idx % vocab).flatten()
        scores = total.view(b, beam * vocab).gather(1, idx)
        state = {k: v[origin] for k, v in state.items()}
        history = torch.cat([history[origin], tokens[:, None]], 1)
        length = new_length[origin]
        finished = finished[origin] | (tokens == EOS)
        if finished.all():
            break
    best = (scores.flatten() / length_penalty(length, alpha)).view(b, beam).argmax(-1)
    return strip(history.view(b, beam, -1)[torch.arange(b, device=device), best])
