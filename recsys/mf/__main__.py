import sys

from core.cli import run_demo

sys.exit(run_demo("recsys", "mf", sys.argv[1:]))
