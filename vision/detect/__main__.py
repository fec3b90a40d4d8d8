import sys

from core.command import run
from vision.detect.train import COMMANDS

sys.exit(run(COMMANDS, sys.argv[1:], prog="python -m vision.detect"))
