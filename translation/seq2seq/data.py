"""Parallel text (Multi30k de-en, the user's files, or a table through `datasets`) as token tensors.

Files are read as bytes and split on "\\n" only, so line i of the source always pairs with line i
of the target (str.splitlines, which the `datasets` text builder uses, also splits on Unicode
separators such as U+2028 and would shift the pairs). Every line must decode as UTF-8.
"""

import dataclasses
import json
from pathlib import Path

import torch

from core.data import data_root, download, missing_files
from core.errors import DataError, MissingData, ShowcaseError, UsageError
from core.run import REPORT
from translation.seq2seq.tables import hf_pairs, hf_sources
from translation.seq2seq.tokenizer import BOS, PAD

FOLDER = "multi30k"
URL = "https://raw.githubusercontent.com/multi30k/dataset/a3d2e0d26b56f3846f66a952536ffed4e401d05a/data/task1/raw/{}.gz"
FILES = {  # the decompressed files, by sha256
    "train.de": "sha256:2c2b73fd2b548fbcde3a875e0a78d6ee94d498bfdee6bd3eae3945779e9ddf72",
    "train.en": "sha256:460a15fbd157e34a7a9957ee388c1ca247fe47af3ef25fb50442af6c274e0fc6",
    "val.de": "sha256:660e09eb7e1da2f856ea13ee5ad3cf6d36b3d5b0b733c857e94c5747a3dfc660",
    "val.en": "sha256:1f2a23d992769b5b3d209b0a10dd0b77c08cceb1f20dfb97ed0aafa49d107227",
    "test_2016_flickr.de": "sha256:4be6b5b3236b79c25475c6bb829800a7ce559e9ba7a1f6c2394fe4d40be46d16",
    "test_2016_flickr.en": "sha256:399a4382932c1aadd3ceb9bef1008d388a64c76d4ae4e9d4728c6f4301cac182",
}
SPLITS = {"train": "train", "val": "val", "test": "test_2016_flickr"}


def split_lines(raw: bytes, where: str) -> list[str]:
    """UTF-8 text split on "\\n" only; a bad byte is an error naming `where` and the line."""
    lines = raw.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    out = []
    for number, line in enumerate(lines, 1):
        try:
            out.append(line.decode("utf-8").rstrip("\r"))
        except UnicodeDecodeError as exc:
            raise DataError(
                f"{where} line {number} is not UTF-8 ({exc.reason} at byte {exc.start})"
            ) from exc
    return out


def read_lines(path: Path) -> list[str]:
    """The lines of a UTF-8 text file (see split_lines)."""
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise DataError(f"cannot read {path}: {exc.strerror or exc}") from exc
    return split_lines(raw, f"{path}:")


def read_pair(source: Path, target: Path) -> tuple[list[str], list[str]]:
    """Aligned source and target lines; files of different line counts are an error naming both."""
    src, tgt = read_lines(source), read_lines(target)
    if len(src) != len(tgt):
        raise DataError(
            f"{source} has {len(src)} lines but {target} has {len(tgt)}: "
            "a parallel pair needs one target line per source line"
        )
    return src, tgt


def load_multi30k(data_dir: str | None) -> dict[str, tuple[list[str], list[str]]]:
    """Multi30k task 1 (train 29,000 / val 1,014 / test2016 1,000 pairs) from `<root>/multi30k`;
    each file present is verified by sha256, missing ones are downloaded (and verified)."""
    folder = data_root(data_dir) / FOLDER
    for name in missing_files(folder, FILES):
        try:
            download(URL.format(name), folder / name, FILES[name], gunzip=True)
        except DataError as exc:
            raise MissingData(
                f"Multi30k file {name} is missing in {folder} and could not be downloaded "
                f"({exc}); put the decompressed file there"
            ) from None
    return {
        split: read_pair(folder / f"{stem}.de", folder / f"{stem}.en")
        for split, stem in SPLITS.items()
    }


@dataclasses.dataclass
class Pairs:
    """Tokenized pairs, flat: sample i is src[src_start[i] : src_start[i] + src_len[i]], likewise tgt."""

    src: torch.Tensor
    src_start: torch.Tensor
    src_len: torch.Tensor
    tgt: torch.Tensor
    tgt_start: torch.Tensor
    tgt_len: torch.Tensor

    def __len__(self) -> int:
        return len(self.src_len)

    @classmethod
    def build(cls, src: list[list[int]], tgt: list[list[int]]) -> "Pairs":
        def flat(seqs):
            lengths = torch.tensor([len(s) for s in seqs], dtype=torch.long)
            starts = torch.cumsum(lengths, 0) - lengths
            return torch.tensor([t for s in seqs for t in s], dtype=torch.long), starts, lengths

        return cls(*flat(src), *flat(tgt))

    def lengths(self) -> torch.Tensor:
        return torch.maximum(self.src_len, self.tgt_len + 1)

    def to(self, device) -> "Pairs":
        return Pairs(*(getattr(self, f.name).to(device) for f in dataclasses.fields(self)))


def pad_rows(flat: torch.Tensor, starts: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Rows flat[starts[i] : starts[i] + lengths[i]] padded with PAD into (B, max length), batched."""
    width = int(lengths.max())
    offsets = torch.arange(width, device=flat.device)
    index = (starts[:, None] + offsets).clamp(max=len(flat) - 1)
    return torch.where(offsets < lengths[:, None], flat[index], PAD)


def collate(pairs: Pairs, rows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Padded source ids (B, S) and target ids (B, T + 1) that start with <s>, on the pairs' device."""
    rows = rows.to(pairs.src.device)
    src = pad_rows(pairs.src, pairs.src_start[rows], pairs.src_len[rows])
    tgt = pad_rows(pairs.tgt, pairs.tgt_start[rows], pairs.tgt_len[rows])
    return src, torch.cat([torch.full_like(tgt[:, :1], BOS), tgt], 1)


HELD_OUT = 1000  # pairs held out of --train-files for each missing validation or test set


def synthetic_text(n: int, seed: int) -> tuple[list[str], list[str]]:
    """A made-up 'language': the target spells the source's digits as words, in reverse order."""
    words = ["null", "eins", "zwei", "drei", "vier", "fünf", "sechs", "sieben", "acht", "neun"]
    english = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
    gen = torch.Generator().manual_seed(seed)
    src, tgt = [], []
    for _ in range(n):
        digits = torch.randint(
            0, 10, (int(torch.randint(1, 6, (1,), generator=gen)),), generator=gen
        ).tolist()
        src.append(" ".join(words[d] for d in digits))
        tgt.append(" ".join(english[d] for d in reversed(digits)))
    return src, tgt


def load_texts(cfg) -> dict[str, tuple[list[str], list[str]]]:
    """Train, val and test pairs of a run's `TranslationConfig`: Multi30k, the user's files, a
    table through `datasets` (--hf-dataset), or the synthetic language.

    Without --val-files or --test-files (or the source's own validation and test splits), each
    missing set is its own seeded slice of the training pairs (validation first, then test), so
    the pairs that pick the kept weights are never scored as the test."""
    if cfg.synthetic:
        return {
            "train": synthetic_text(2000, cfg.seed),
            "val": synthetic_text(40, cfg.seed + 1),
            "test": synthetic_text(40, 10_000),
        }
    if cfg.hf_dataset:
        found = hf_pairs(cfg.hf_dataset, cfg.hf_columns, cfg.hf_split)
        return carve(cfg, found.pop("train"), found, "--hf-dataset")
    if cfg.train_files is None:
        if cfg.val_files or cfg.test_files:
            raise UsageError("--val-files and --test-files need --train-files")
        return load_multi30k(cfg.data_dir)
    given = {"val": cfg.val_files, "test": cfg.test_files}
    given = {name: files and read_pair(*files) for name, files in given.items()}
    return carve(cfg, read_pair(*cfg.train_files), given, "--train-files")


def carve(cfg, train: tuple, given: dict, flag: str) -> dict[str, tuple[list[str], list[str]]]:
    """Train, val and test pairs: each of val and test as `given`, or (None) a seeded slice of
    the `train` pairs, held out of them."""
    carved = [name for name, pairs in given.items() if pairs is None]
    size = min(HELD_OUT, len(train[0]) // 10)
    if carved and size == 0:
        ask = f"pass --{carved[0]}-files" if flag == "--train-files" else "give the source more"
        raise UsageError(
            f"{flag} holds {len(train[0])} pairs: too few to hold out "
            f"{' and '.join(carved)} pairs; {ask}"
        )
    order = torch.randperm(len(train[0]), generator=torch.Generator().manual_seed(cfg.seed))
    texts, held = {}, set()
    # validation takes the first slice of the seeded order, test the next one
    for i, name in enumerate(carved):
        rows = order[i * size : (i + 1) * size].tolist()
        texts[name] = tuple([side[r] for r in rows] for side in train)
        held.update(rows)
    for name in given.keys() - carved:
        texts[name] = given[name]
    texts["train"] = tuple([x for i, x in enumerate(side) if i not in held] for side in train)
    for name in ("train", "val", "test"):
        if not texts[name][0]:
            raise UsageError(f"the {name} pairs of {flag} are empty")
    return {name: texts[name] for name in ("train", "val", "test")}


def split_sources(cfg, texts: dict) -> dict[str, str]:
    """Where the validation and test pairs come from, in words, for the report."""
    if cfg.hf_dataset and not cfg.synthetic:
        return hf_sources(cfg, {name: len(texts[name][0]) for name in ("val", "test")})
    out = {}
    for name in ("val", "test"):
        files = getattr(cfg, f"{name}_files")
        n = len(texts[name][0])
        if cfg.synthetic:
            out[name] = f"{n} synthetic pairs"
        elif cfg.train_files is None:
            out[name] = f"Multi30k {SPLITS[name]} ({n} pairs)"
        elif files:
            out[name] = f"{files[0]} {files[1]} ({n} pairs)"
        else:
            which = "first" if name == "val" or cfg.val_files else "second"
            out[name] = (
                f"{n} pairs held out of --train-files ({which} seeded slice, seed {cfg.seed}; "
                "not trained on)"
            )
    return out


def refuse_trained_slice(cfg, run_cfg) -> None:
    """A run trained on --train-files before test pairs were held out of them (its metrics.json
    names no `test_pairs`) trained on today's test slice: scoring it there would flatter it."""
    carved = run_cfg.train_files and not run_cfg.test_files and cfg.split == "test"
    report = Path(cfg.out_dir) / REPORT
    if carved and report.exists() and "test_pairs" not in json.loads(report.read_text())["metrics"]:
        raise ShowcaseError(
            f"{cfg.out_dir} was trained before a test slice was held out of --train-files, so it "
            "trained on that slice: score it with --split val, or train it again"
        )
