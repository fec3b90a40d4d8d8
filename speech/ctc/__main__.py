import sys

from core.command import run
from speech.ctc.train import COMMANDS

sys.exit(run(COMMANDS, sys.argv[1:], prog="python -m speech.ctc"))
