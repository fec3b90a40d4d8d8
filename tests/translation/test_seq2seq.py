import io
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from core.checkpoint import load_weights, save_weights
from core.errors import DataError, ShowcaseError
from core.parse import build
from tests.conftest import real_data
from translation.seq2seq.data import (
    Pairs,
    collate,
    load_multi30k,
    load_texts,
    read_pair,
    synthetic_text,
)
from translation.seq2seq.decode import beam_search, greedy
from translation.seq2seq.model import build_model, seq2seq_loss
from translation.seq2seq.predict import TranslateConfig, Translator, translate
from translation.seq2seq.scoring import bleu_chrf
from translation.seq2seq.tokenizer import BOS, EOS, PAD, encode, load_tokenizer, train_tokenizer
from translation.seq2seq.train import TranslationConfig, TranslationEvalConfig, evaluate, main

SHAPE = {
    "d_model": 32,
    "heads": 4,
    "layers": 2,
    "d_ff": 64,
    "dropout": 0.0,
    "emb": 32,
    "hidden": 32,
    "max_len": 128,
}


@pytest.fixture(scope="module")
def tokenizer():
    src, tgt = synthetic_text(300, 0)
    return train_tokenizer(src + tgt + ["Grüße aus Köln, naïve café!"], 400)


def test_tokenizer_round_trips_and_persists(tokenizer, tmp_path):
    text = "Zwei Männer grüßen — naïve café 🙂 ünseen ẞ"
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    assert tokenizer.decode(ids).lstrip(" ") == text  # exact, unseen characters included
    tokenizer.backend_tokenizer.save(str(tmp_path / "tokenizer.json"))
    again = load_tokenizer(tmp_path)
    assert again(text, add_special_tokens=False)["input_ids"] == ids
    assert [tokenizer.convert_tokens_to_ids(t) for t in ("<pad>", "<unk>", "<s>", "</s>")] == [
        PAD,
        1,
        BOS,
        EOS,
    ]


def test_batches_pad_and_start_with_bos(tokenizer):
    pairs = Pairs.build([[5, 6, EOS], [7, EOS]], [[8, EOS], [9, 10, 11, EOS]])
    src, tgt = collate(pairs, torch.tensor([0, 1]))
    assert src.tolist() == [[5, 6, EOS], [7, EOS, PAD]]
    assert tgt.tolist() == [[BOS, 8, EOS, PAD, PAD], [BOS, 9, 10, 11, EOS]]


@pytest.mark.parametrize("name", ["transformer", "gru", "tutorial"])
def test_shapes_masks_and_cached_steps(name):
    torch.manual_seed(0)
    model = build_model(name, 50, SHAPE).eval()
    src = torch.tensor([[5, 6, 7, EOS], [8, EOS, PAD, PAD]])
    tgt = torch.tensor([[BOS, 9, 10, 11, 12], [BOS, 13, 14, PAD, PAD]])
    logits = model(src, tgt)
    assert logits.shape == (2, 5, 50)
    later = tgt.clone()
    later[:, 3:] = 20  # changing later target tokens must not change earlier outputs
    assert torch.allclose(model(src, later)[:, :3], logits[:, :3], atol=1e-5)
    padded = torch.cat([src, torch.full((2, 3), PAD)], 1)  # extra source padding changes nothing
    assert torch.allclose(model(padded, tgt), logits, atol=1e-5)
    state = model.start(*model.encode(src))
    for t in range(5):  # the cached step gives the full pass's logits
        step_logits, state = model.step(tgt[:, t], state)
        assert torch.allclose(step_logits, logits[:, t], atol=1e-4)


@pytest.mark.parametrize("name", ["transformer", "tutorial"])
def test_position_table_follows_max_len_and_old_weights_load(name, tmp_path):
    torch.manual_seed(0)
    old = build_model(name, 50, {**SHAPE, "max_len": 256})  # the table every run had before
    save_weights(old, tmp_path / "old.safetensors")
    model = build_model(name, 50, {**SHAPE, "max_len": 512}).eval()
    assert {k: v.shape for k, v in model.state_dict().items()} == {
        k: v.shape for k, v in old.state_dict().items()
    }  # positions are a buffer, not a weight: a run saved before loads unchanged
    load_weights(model, tmp_path / "old.safetensors")
    src = torch.randint(4, 50, (1, 400))  # longer than 256 tokens
    tgt = torch.cat([torch.tensor([[BOS]]), torch.randint(4, 50, (1, 299))], 1)
    logits = model(src, tgt)
    assert logits.shape == (1, 300, 50) and torch.isfinite(logits).all()
    state = model.start(*model.encode(src))
    for t in range(300):  # the cached steps reach the same late positions
        step_logits, state = model.step(tgt[:, t], state)
    assert torch.allclose(step_logits, logits[:, -1], atol=1e-4)


def test_attention_of_a_translation_that_runs_to_max_len(tokenizer):
    torch.manual_seed(0)
    model = build_model("transformer", len(tokenizer), {**SHAPE, "max_len": 16}).eval()
    with torch.no_grad():  # the decoder always says token 5: never </s>
        model.embed.weight[5] = 1.0
        model.dec_norm.weight.zero_()
        model.dec_norm.bias.copy_(model.embed.weight[5])
    src, out, weights = Translator(model, tokenizer, "cpu", 16).attention("eins zwei")
    # 15 tokens and </s>: as many positions as the table holds
    assert len(out) == 16 and weights.shape == (16, len(src))


def test_tied_embeddings_save_and_load(tmp_path):
    torch.manual_seed(0)
    model = build_model("transformer", 50, SHAPE).eval()
    vocab_sized = [n for n, p in model.named_parameters() if p.shape == (50, SHAPE["d_model"])]
    assert vocab_sized == ["embed.weight"]  # input and output share one matrix
    src, tgt = torch.tensor([[5, 6, EOS]]), torch.tensor([[BOS, 7]])
    with torch.no_grad():
        model.embed.weight[9] += 1.0  # a change to the embedding moves the output layer too
    save_weights(model, tmp_path / "m.safetensors")
    again = build_model("transformer", 50, SHAPE).eval()
    load_weights(again, tmp_path / "m.safetensors")
    assert torch.equal(again(src, tgt), model(src, tgt))


@pytest.mark.parametrize("name", ["transformer", "gru"])
def test_beam_one_is_greedy_and_copy_task_is_learned(name):
    torch.manual_seed(0)
    model = build_model(name, 20, SHAPE)
    gen = torch.Generator().manual_seed(0)
    opt = torch.optim.Adam(model.parameters(), 3e-3)
    for _ in range(500):  # copy random sequences of 3-6 tokens
        seqs = [
            torch.randint(
                4, 20, (int(torch.randint(3, 7, (1,), generator=gen)),), generator=gen
            ).tolist()
            for _ in range(32)
        ]
        pairs = Pairs.build([s + [EOS] for s in seqs], [s + [EOS] for s in seqs])
        src, tgt = collate(pairs, torch.arange(32))
        loss = seq2seq_loss(model(src, tgt[:, :-1]), tgt[:, 1:], 0.0)
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    tests = [[5, 9, 12, EOS], [7, 7, 8, 19, 4, EOS], [11, 6, 15, 10, EOS]]
    src = collate(Pairs.build(tests, tests), torch.arange(3))[0]
    found = greedy(model, src, 10)
    assert found == [t[:-1] for t in tests]  # exact match
    assert beam_search(model, src, beam=1, max_len=10) == found
    assert beam_search(model, src, beam=4, max_len=10) == found


def test_bleu_of_references_against_themselves_is_100():
    refs = ["A man rides a bike.", "Two dogs play in the snow."]
    scores = bleu_chrf(refs, refs)
    assert scores["bleu"] == pytest.approx(100.0) and scores["chrf"] == pytest.approx(100.0)
    assert "case:mixed" in scores["signature"] and "tok:13a" in scores["signature"]


def test_bad_parallel_files(tmp_path):
    (tmp_path / "a.de").write_text("eins\nzwei\n", encoding="utf-8")
    (tmp_path / "a.en").write_text("one\n", encoding="utf-8")
    with pytest.raises(DataError, match="has 2 lines but .* has 1"):
        read_pair(tmp_path / "a.de", tmp_path / "a.en")
    (tmp_path / "b.de").write_bytes("gut\nschl\xe4cht\n".encode("latin-1"))
    with pytest.raises(DataError, match="b.de: line 2 is not UTF-8"):
        read_pair(tmp_path / "b.de", tmp_path / "a.en")
    with pytest.raises(DataError, match="missing"):
        load_multi30k(str(tmp_path))  # offline: names the missing file


def write_pairs(folder: Path, stem: str, n: int, start: int = 0) -> tuple[str, str]:
    src, tgt = folder / f"{stem}.de", folder / f"{stem}.en"
    src.write_text("".join(f"satz {i}\n" for i in range(start, start + n)), encoding="utf-8")
    tgt.write_text("".join(f"sentence {i}\n" for i in range(start, start + n)), encoding="utf-8")
    return str(src), str(tgt)


def test_own_files_hold_out_a_test_set_apart_from_validation(tmp_path):
    files = write_pairs(tmp_path, "train", 300)
    texts = load_texts(build(TranslationConfig, train_files=files))
    sets = {name: set(src) for name, (src, _) in texts.items()}
    assert {name: len(s) for name, s in sets.items()} == {"train": 240, "val": 30, "test": 30}
    assert not sets["val"] & sets["test"] and not (sets["val"] | sets["test"]) & sets["train"]
    assert all(t == s.replace("satz", "sentence") for s, t in zip(*texts["test"], strict=True))
    again = load_texts(build(TranslationConfig, train_files=files))  # seeded: the same slices
    assert again["test"] == texts["test"] and again["val"] == texts["val"]
    other = load_texts(build(TranslationConfig, train_files=files, seed=1))
    assert other["test"] != texts["test"]
    val = write_pairs(tmp_path, "val", 5, start=1000)  # given validation files: test still held out
    texts = load_texts(build(TranslationConfig, train_files=files, val_files=val))
    assert len(texts["train"][0]) == 270 and texts["val"][0][0] == "satz 1000"
    assert not set(texts["test"][0]) & set(texts["train"][0])
    with pytest.raises(ShowcaseError, match="too few to hold out val and test"):
        load_texts(build(TranslationConfig, train_files=write_pairs(tmp_path, "tiny", 5)))


def test_own_files_run_reports_which_pairs_scored(tmp_path, capsys):
    files = write_pairs(tmp_path, "train", 200)
    cfg = build(
        TranslationConfig,
        train_files=files,
        out_dir=str(tmp_path / "run"),
        device="cpu",
        max_steps=2,
        vocab_size=300,
        beam=1,
        **SHAPE,
    )
    metrics = main(cfg)["metrics"]
    assert metrics["val_pairs"].startswith("20 pairs held out of --train-files (first seeded slice")
    assert metrics["test_pairs"].startswith("20 pairs held out of --train-files (second seeded")
    assert "test: 20 pairs held out" in capsys.readouterr().out
    scored = evaluate(TranslationEvalConfig(out_dir=cfg.out_dir, device="cpu"))["metrics"]
    assert scored["test_pairs"] == metrics["test_pairs"] and scored["sentences"] == 20
    # A run from before test pairs were held out trained on today's test slice: eval refuses it.
    report = tmp_path / "run" / "metrics.json"
    old = json.loads(report.read_text())
    for key in ("val_pairs", "test_pairs"):
        del old["metrics"][key]
    report.write_text(json.dumps(old))
    with pytest.raises(ShowcaseError, match="trained on that slice: score it with --split val"):
        evaluate(TranslationEvalConfig(out_dir=cfg.out_dir, device="cpu"))
    val = evaluate(TranslationEvalConfig(out_dir=cfg.out_dir, device="cpu", split="val"))
    assert val["metrics"]["val_pairs"] == metrics["val_pairs"]


def test_long_inputs_are_truncated_with_a_warning(tokenizer):
    with pytest.warns(UserWarning, match="1 input sentence"):
        ids = encode(tokenizer, ["eins " * 100, "zwei"], 16)
    assert len(ids[0]) == 16 and ids[0][-1] == EOS


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("translation") / "run"
    cfg = build(
        TranslationConfig,
        synthetic=True,
        out_dir=str(out),
        device="cpu",
        max_steps=3,
        vocab_size=300,
        log_every=1,
        **{k: v for k, v in SHAPE.items()},
    )
    main(cfg)
    return out


def test_translate_reads_stdin_and_keeps_the_line_count(trained, monkeypatch, capsys):
    text = "eins zwei\n\n" + "drei " * 300 + "\n☃ unbekannt\n"
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(text.encode("utf-8"))))
    translate(TranslateConfig(out_dir=str(trained), device="cpu", json=True, beam=2))
    out = capsys.readouterr()
    lines = [json.loads(line) for line in out.out.strip().split("\n")]
    assert [x["source"] for x in lines][:2] == ["eins zwei", ""] and len(lines) == 4
    assert lines[1]["translation"] == ""  # an empty line gives an empty line
    assert "truncated" in out.err


def test_translate_names_a_non_utf8_line(trained, monkeypatch):
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"gut\nschl\xe4cht\n")))
    with pytest.raises(ShowcaseError, match="standard input line 2 is not UTF-8"):
        translate(TranslateConfig(out_dir=str(trained), device="cpu"))


def test_hf_marian_path_offline(tokenizer, tmp_path, capsys):
    from transformers import MarianConfig, MarianMTModel

    cfg = MarianConfig(
        vocab_size=len(tokenizer),
        d_model=16,
        encoder_layers=1,
        decoder_layers=1,
        encoder_attention_heads=2,
        decoder_attention_heads=2,
        encoder_ffn_dim=32,
        decoder_ffn_dim=32,
        max_position_embeddings=64,
        pad_token_id=PAD,
        eos_token_id=EOS,
        decoder_start_token_id=PAD,
        forced_eos_token_id=EOS,
    )
    MarianMTModel(cfg).save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    translate(
        TranslateConfig(["Ein Hund.", ""], model=f"hf:{tmp_path}", device="cpu", beam=2, json=True)
    )
    lines = capsys.readouterr().out.strip().split("\n")
    assert len(lines) == 2 and json.loads(lines[1])["translation"] == ""
    with pytest.raises(ShowcaseError, match="not in the local Hugging Face cache"):
        translate(TranslateConfig(["x"], model="hf:no-such/model-anywhere", device="cpu"))


def test_bad_config_values_are_refused():
    for bad in ({"heads": 3}, {"vocab_size": 10}, {"label_smoothing": 1.0}, {"max_len": 4}):
        with pytest.raises(ShowcaseError):
            build(TranslationConfig, **bad)


def test_real_multi30k_loads_with_its_published_sizes():
    root = real_data("multi30k")
    data = load_multi30k(str(root.parent))
    assert {k: len(v[0]) for k, v in data.items()} == {"train": 29000, "val": 1014, "test": 1000}
    assert data["train"][1][0] == "Two young, White males are outside near many bushes."


def test_translate_cli_reads_stdin(trained):
    root = Path(__file__).resolve().parents[2]
    cmd = [
        sys.executable,
        "-m",
        "translation.seq2seq",
        "translate",
        "--out-dir",
        str(trained),
        "--device",
        "cpu",
        "--json",
    ]
    result = subprocess.run(cmd, input=b"eins zwei\n\ndrei\n", capture_output=True, cwd=root)
    assert result.returncode == 0, result.stderr.decode()
    lines = [json.loads(x) for x in result.stdout.decode().strip().split("\n")]
    assert [x["source"] for x in lines] == ["eins zwei", "", "drei"]
    bad = subprocess.run(cmd, input=b"gut\nschl\xe4cht\n", capture_output=True, cwd=root)
    assert (
        bad.returncode == 1
        and b"line 2 is not UTF-8" in bad.stderr
        and b"Traceback" not in bad.stderr
    )


@pytest.mark.real_data
@pytest.mark.slow
def test_quick_tour_configuration_translates_multi30k(tmp_path):
    from translation import DEMOS

    root = real_data("multi30k")
    (demo,) = DEMOS
    cfg = build(
        TranslationConfig,
        **demo.tour.quick,
        out_dir=str(tmp_path / "quick"),
        device="cpu",
        data_dir=str(root.parent),
    )
    metrics = main(cfg)["metrics"]
    assert metrics["val_bleu"] >= 20 and metrics["test_bleu"] >= 20  # chance 0.5; the full run: 40
