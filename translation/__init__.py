"""Translation: a German-to-English seq2seq translator (`translation.seq2seq`)."""

from core.registry import Demo, Tour

DEMOS = [
    Demo(
        "translation",
        "seq2seq",
        "seq2seq translator de-en",
        "Multi30k",
        "test sacreBLEU",
        "translation.seq2seq.train",
        Tour(
            metric="test_bleu",
            target=35.0,
            chance=0.5,  # sacreBLEU 0.48 on test2016
            chance_is="copying the German sentence",
            # a small Transformer (d_model 128, 2 + 2 layers, FFN 512, 4,000 BPE tokens, no
            # dropout) and many small steps learn fastest in a short run: greedy val BLEU 26.0 after
            # 1,100 steps of 32 sentences (750 of 64: 25.5; 600 of 64 at lr 3e-3: 24.1; 400 of 128
            # at lr 3e-3: 22.9; d_model 256, 210 steps of 128: 2.2; the full model, 200 steps of 128:
            # test BLEU 6.5)
            quick={
                "d_model": 128,
                "layers": 2,
                "d_ff": 512,
                "vocab_size": 4000,
                "dropout": 0.0,
                "batch_size": 32,
                "lr": 2e-3,
                "warmup_steps": 60,
                "max_steps": 1100,
                "eval_every": 0,
                "beam": 1,
            },
            pictures=("attention.png",),
            full=40.18,
            full_source="translation transformer_test_bleu",
        ),
        app="translation.seq2seq.predict:app_tab",
    )
]
