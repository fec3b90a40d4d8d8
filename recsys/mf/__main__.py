import sys

from core.command import run
from recsys.mf.train import COMMANDS

sys.exit(run(COMMANDS, sys.argv[1:], prog="python -m recsys.mf"))
