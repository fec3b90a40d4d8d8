"""Vision: an MNIST digit classifier (`vision.classify`) and a small object detector (`vision.detect`)."""

from core.registry import Demo

DEMOS = [
    Demo(
        "vision",
        "classify",
        "CNN digit classifier",
        "MNIST",
        "test accuracy",
        "vision.classify.train",
    ),
    Demo(
        "vision",
        "detect",
        "small object detector",
        "MNIST digit scenes",
        "test mAP@[.5:.95]",
        "vision.detect.train",
    ),
]
