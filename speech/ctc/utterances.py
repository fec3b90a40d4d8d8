"""Utterances composed from FSDD recordings: which clips each utterance joins (a `Plan`), the
seeded training, validation and test plans of a run (`make_split`), and their batches, assembled
on the training device.

    split = make_split(cfg)                    # clips + train/val/test plans (FSDD, LibriSpeech, tones)
    collate = make_collate(split.clips, split.train, device)
    waves, samples, ids, id_lengths = collate(rows)
"""

import dataclasses
from dataclasses import dataclass

import torch

from core.errors import DataError, UsageError
from speech.ctc.data import GAIN_SPREAD, SAMPLE_RATE, Clips, load_fsdd, synthetic_clips, targets
from speech.ctc.recordings import load_hf_audio, load_librispeech


@dataclass
class Plan:
    """Composed utterances: clip ids (-1: none), silences before each clip and after the last,
    and a gain per clip."""

    clips: torch.Tensor  # (U, W) clip ids, -1 past the utterance's words
    silences: torch.Tensor  # (U, W + 1) samples of silence before clip j (and after the last)
    gains: torch.Tensor  # (U, W)

    def __len__(self) -> int:
        return len(self.clips)

    def lengths(self, clips: Clips) -> torch.Tensor:
        """(U,) samples of each utterance, on the clips' device."""
        device = clips.lengths.device
        ids, silences = self.clips.to(device), self.silences.to(device)
        speech = torch.where(ids >= 0, clips.lengths[ids.clamp(min=0)], 0).sum(1)
        return speech + silences.sum(1)

    def transcripts(self, clips: Clips) -> list[str]:
        return [" ".join(clips.texts[c] for c in row if c >= 0) for row in self.clips.tolist()]


def join(a: Plan, b: Plan) -> Plan:
    """The utterances of both plans (the narrower one padded with empty slots)."""
    w = max(a.clips.shape[1], b.clips.shape[1])

    def widen(p: Plan) -> Plan:
        extra = w - p.clips.shape[1]
        return Plan(
            torch.nn.functional.pad(p.clips, (0, extra), value=-1),
            torch.nn.functional.pad(p.silences, (0, extra)),
            torch.nn.functional.pad(p.gains, (0, extra), value=1.0),
        )

    a, b = widen(a), widen(b)
    return Plan(
        torch.cat([a.clips, b.clips]),
        torch.cat([a.silences, b.silences]),
        torch.cat([a.gains, b.gains]),
    )


def single(clips: Clips, pool: torch.Tensor) -> Plan:
    """One utterance per clip of `pool`, with no silence around it (bare clips, or whole
    LibriSpeech utterances)."""
    n = len(pool)
    return Plan(pool[:, None].clone(), torch.zeros(n, 2, dtype=torch.long), torch.ones(n, 1))


def compose(
    clips: Clips,
    pool: torch.Tensor,
    count: int,
    seed: int,
    max_words: int = 7,
    min_words: int = 1,
    spread: float = GAIN_SPREAD,
) -> Plan:
    """`count` utterances of `min_words`..`max_words` clips from `pool`, each of one speaker,
    joined by 50-300 ms silences; a third start and a third end with no silence at all. Each clip
    is scaled by e^u, u uniform in [-spread, spread]."""
    if len(pool) == 0:
        raise DataError("no recordings to compose utterances from")
    gen = torch.Generator().manual_seed(seed)
    pool = pool[torch.argsort(clips.speakers[pool], stable=True)]  # grouped by speaker
    present, counts = clips.speakers[pool].unique_consecutive(return_counts=True)
    firsts = counts.cumsum(0) - counts
    who = torch.randint(len(present), (count,), generator=gen)  # (U,) the speaker, by position
    words = torch.randint(min_words, max_words + 1, (count,), generator=gen)  # (U,)
    within = (torch.rand(count, max_words, generator=gen) * counts[who][:, None]).long()
    picks = pool[firsts[who][:, None] + within]  # (U, W) clips of that speaker
    slots = torch.arange(max_words)[None, :]
    chosen = torch.where(slots < words[:, None], picks, -1)
    ms = SAMPLE_RATE // 1000
    silences = torch.randint(50 * ms, 300 * ms + 1, (count, max_words + 1), generator=gen)
    silences[:, 1:] *= (slots < words[:, None] - 1).long()  # only between the words...
    ends = words[:, None] == torch.arange(max_words + 1)[None, :]
    trail = torch.randint(50 * ms, 300 * ms + 1, (count,), generator=gen)
    silences = torch.where(ends, trail[:, None], silences)  # ...and after the last
    bare = torch.rand(count, 2, generator=gen) < 1 / 3
    silences[:, 0] *= (~bare[:, 0]).long()
    silences = torch.where(ends & bare[:, 1:], 0, silences)
    gains = torch.exp(torch.rand(count, max_words, generator=gen) * (2 * spread) - spread)
    return Plan(chosen, silences, gains)


def assemble(clips: Clips, plan: Plan, rows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Waveforms (B, T) zero-padded and lengths (B,) of plan rows `rows`, built in one scatter
    on the clips' device."""
    device = clips.audio.device
    ids, sil, gain = (
        plan.clips[rows].to(device),
        plan.silences[rows].to(device),
        plan.gains[rows].to(device),
    )
    valid = ids >= 0  # (B, W)
    lengths = torch.where(valid, clips.lengths[ids.clamp(min=0)], 0)  # (B, W)
    # each clip starts after the silences before it and the clips and silences that precede it
    offsets = (sil[:, :-1] + lengths).cumsum(1) - lengths  # (B, W)
    totals = lengths.sum(1) + sil.sum(1)  # (B,)
    width = int(totals.max())
    b, w = valid.nonzero(as_tuple=True)  # the clips really present
    n = lengths[b, w]  # (K,)
    owner = torch.repeat_interleave(
        torch.arange(len(n), device=device), n
    )  # (S,) clip of each sample
    within = torch.arange(len(owner), device=device) - (n.cumsum(0) - n)[owner]  # (S,)
    source = clips.starts[ids[b, w]][owner] + within
    dest = b[owner] * width + offsets[b, w][owner] + within
    out = torch.zeros(len(rows) * width, device=device)
    out[dest] = clips.audio[source] * gain[b, w][owner]  # no index repeats: writes are disjoint
    return out.view(len(rows), width), totals


EDGE_SILENCE = 150 * SAMPLE_RATE // 1000
"""Recognition puts 150 ms of silence before and after each input, as around most training words
(stride-4 model, validation clips: 96.0% accurate bare, 98.7% with it; utterance WER unchanged)."""


def pad_silence(waves: torch.Tensor, samples: torch.Tensor, pad: int = EDGE_SILENCE):
    """(B, T) waveforms and their lengths (B,) -> each with `pad` zeros before and after it."""
    return torch.nn.functional.pad(waves, (pad, pad)), samples + 2 * pad


@dataclasses.dataclass
class Split:
    """The clips, and the plans of the training, validation and test utterances."""

    clips: Clips
    train: Plan
    val: Plan | None
    test: Plan
    test_clips: Plan | None  # single test recordings, decoded alone
    val_clips: Plan | None = None  # single validation recordings
    note: str | None = None  # where the test recordings come from, when it needs saying


def make_split(cfg, data_dir: str | None = None) -> Split:
    """The data a run's `SpeechConfig` names: FSDD (official or leave-one-speaker-out split),
    your recordings (LibriSpeech layout, or through `datasets`), or tones."""
    note = None
    if cfg.hf_dataset:
        clips, note = load_hf_audio(cfg.hf_dataset, cfg.hf_columns, cfg.seed, cfg.hf_split)
    elif cfg.librispeech:
        clips = load_librispeech(cfg.librispeech)
    if cfg.librispeech or cfg.hf_dataset:  # each recording one utterance; index 0: test, 1: val
        ids = torch.arange(len(clips.lengths))
        test = ids[clips.index == 0]
        val = ids[clips.index == 1] if cfg.val_utterances else ids[:0]
        train = ids[(clips.index != 0) & ((clips.index != 1) | (cfg.val_utterances == 0))]
        return Split(
            clips,
            single(clips, train),
            single(clips, val) if len(val) else None,
            single(clips, test),
            None,
            note=note,
        )
    clips = synthetic_clips(cfg.seed) if cfg.synthetic else load_fsdd(data_dir or cfg.data_dir)
    ids = torch.arange(len(clips.lengths))
    is_test, is_val = clips.index < 5, clips.index >= 45
    if cfg.holdout_speaker:
        is_test = clips.speakers == speaker_id(clips, cfg.holdout_speaker)
        is_val = ~is_test & (clips.index >= 45)
    if cfg.synthetic:
        is_val = ~is_test & (clips.index == 11)
    if cfg.adapt_takes:  # speaker adaptation: the speaker's first takes train, the others test
        mine = clips.speakers == speaker_id(clips, cfg.holdout_speaker)
        is_val = torch.isin(clips.index, adapt_val_takes(cfg))
        is_test = (clips.index >= cfg.adapt_takes) & ~is_val
        ids, is_test, is_val = ids[mine], is_test[mine], is_val[mine]
        if cfg.adapt_val_takes and not is_val.any():  # tones for smoke tests have 12 takes
            raise DataError(
                f"--adapt-val-takes: the speaker has none of takes {adapt_val_takes(cfg).tolist()}"
            )
    if cfg.leave_out:
        gone = clips.speakers == speaker_id(clips, cfg.leave_out)
        ids, is_test, is_val = ids[~gone], is_test[~gone], is_val[~gone]
    is_val &= cfg.val_utterances > 0
    train_ids, val_ids, test_ids = ids[~is_test & ~is_val], ids[is_val], ids[is_test]
    words = cfg.max_words
    if cfg.synthetic:  # smoke tests: a few utterances of each kind
        cfg = dataclasses.replace(
            cfg,
            train_utterances=min(cfg.train_utterances, 200),
            val_utterances=min(cfg.val_utterances, 20),
            test_utterances=min(cfg.test_utterances, 40),
        )
    spread = cfg.gain_spread  # training utterances only: validation and test keep 0.5x to 2x
    train = compose(clips, train_ids, cfg.train_utterances, cfg.seed, words, spread=spread)
    if cfg.single_clips:  # bare clips are rare among compositions: add each recording alone
        rest = max(1, cfg.train_utterances - len(train_ids))
        train = compose(clips, train_ids, rest, cfg.seed, words, spread=spread)
        train = join(train, single(clips, train_ids))
    return Split(
        clips,
        train,
        compose(clips, val_ids, cfg.val_utterances, cfg.seed + 1, words) if len(val_ids) else None,
        compose(clips, test_ids, cfg.test_utterances, 10_000 + cfg.seed, words),
        single(clips, test_ids),
        single(clips, val_ids) if len(val_ids) else None,
    )


def adapt_val_takes(cfg) -> torch.Tensor:
    """The takes that validate speaker adaptation: --adapt-val-takes of those after the first
    --adapt-takes, drawn from --seed (the same takes of every digit), so they sample the test
    takes' recordings, not just those made next."""
    gen = torch.Generator().manual_seed(cfg.seed)
    others = torch.randperm(50 - cfg.adapt_takes, generator=gen) + cfg.adapt_takes
    return others[: cfg.adapt_val_takes].sort().values


def speaker_id(clips: Clips, name: str) -> int:
    """The index of a speaker's name; an unknown one is a one-line error."""
    if name not in clips.speaker_names:
        known = ", ".join(clips.speaker_names)
        raise UsageError(f"unknown speaker {name!r}: choose from {known}")
    return clips.speaker_names.index(name)


def make_collate(clips: Clips, plan: Plan, device: torch.device):
    """Batches of (waves (B, T), samples (B,), targets (B, S), target lengths (B,)) on `device`."""
    ids, lengths = targets(plan.transcripts(clips))
    ids, lengths = ids.to(device), lengths.to(device)

    def collate(rows: torch.Tensor):
        waves, samples = assemble(clips, plan, rows)
        rows = rows.to(device)
        return waves, samples, ids[rows], lengths[rows]

    return collate
