import sys

from core.command import run
from rl.dqn.train import COMMANDS

sys.exit(run(COMMANDS, sys.argv[1:], prog="python -m rl.dqn"))
