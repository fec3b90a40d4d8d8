"""Vision: an MNIST digit classifier (`vision.classify`) and a small object detector (`vision.detect`)."""

from core.demo import Demo, Tour

MNIST = (
    "MNIST (Yann LeCun and Corinna Cortes, from NIST): Creative Commons Attribution-Share "
    "Alike 3.0."
)

CLASSIFY = Demo(
    "vision",
    "classify",
    "CNN digit classifier",
    "MNIST",
    "test accuracy",
    run_dir="runs/vision-classify",
    module="vision.classify.train",
    tour=Tour(
        metric="test_acc",
        target=0.995,
        chance=0.1,
        chance_is="guessing one of 10 digits",
        quick={"max_steps": 500},
        pictures=("confusion.png", "mistakes.png"),
        full=0.9952,
        full_source="vision-classify default_test_acc",
    ),
    app="vision.classify.predict:app_tab",
    licence=MNIST,
)

DETECT = Demo(
    "vision",
    "detect",
    "small object detector",
    "MNIST digit scenes",
    "test mAP@[.5:.95]",
    run_dir="runs/vision-detect",
    module="vision.detect.train",
    tour=Tour(
        metric="map",
        target=0.80,
        chance=0.0,
        chance_is="boxes placed at random",
        # val mAP 0.747 after 800 steps, 0.712 after 600 (mAP@.5 0.964 and 0.950): the boxes a
        # newcomer sees are as right, in a quarter less of the tour's second-longest training
        quick={"max_steps": 600, "eval_every": 0},
        pictures=("detections.png",),
        full=0.8554,
        full_source="vision-detect map",
    ),
    app="vision.detect.predict:app_tab",
    licence=MNIST,
)

DEMOS = [CLASSIFY, DETECT]
