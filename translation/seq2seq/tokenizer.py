"""The joint byte-level BPE vocabulary: trained on a run's training pairs (`tokenizers`), saved in
the run directory, and used as a transformers tokenizer; every sentence ends with </s>."""

import warnings
from pathlib import Path

from core.errors import DataError

SPECIALS = ["<pad>", "<unk>", "<s>", "</s>"]


PAD, UNK, BOS, EOS = range(4)


def train_tokenizer(texts: list[str], vocab_size: int):
    """A joint byte-level BPE tokenizer trained on `texts`, as a transformers PreTrainedTokenizerFast.

    Byte-level: every character is encodable (unseen ones as their UTF-8 bytes), and decoding
    gives back the exact text."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=True)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIALS,
        show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tok.train_from_iterator(texts, trainer)
    return wrap(tok)


def wrap(tok):
    from transformers import PreTrainedTokenizerFast

    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        pad_token="<pad>",
        unk_token="<unk>",
        bos_token="<s>",
        eos_token="</s>",
    )


def load_tokenizer(folder: Path):
    """The tokenizer a run saved (`tokenizer.json` in its directory)."""
    from tokenizers import Tokenizer

    path = Path(folder) / "tokenizer.json"
    if not path.is_file():
        raise DataError(f"no tokenizer in {folder}: train the run first")
    return wrap(Tokenizer.from_file(str(path)))


def encode(tokenizer, texts: list[str], max_len: int, what: str = "input") -> list[list[int]]:
    """Token ids of each text plus </s>, cut at `max_len` tokens with one warning counting the cuts."""
    ids = tokenizer(texts, add_special_tokens=False)["input_ids"] if texts else []
    cut = sum(len(x) + 1 > max_len for x in ids)
    if cut:
        warnings.warn(
            f"{cut} {what} sentence(s) longer than {max_len} tokens were truncated", stacklevel=2
        )
    return [x[: max_len - 1] + [EOS] for x in ids]
