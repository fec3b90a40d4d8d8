import sys

from core.cli import run_demo

sys.exit(run_demo("rl", "dqn", sys.argv[1:]))
