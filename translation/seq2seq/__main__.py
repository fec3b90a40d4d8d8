import sys

from core.command import run
from translation.seq2seq.train import COMMANDS

sys.exit(run(COMMANDS, sys.argv[1:], prog="python -m translation.seq2seq"))
