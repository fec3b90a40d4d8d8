import sys

from core.cli import run_demo

sys.exit(run_demo("vision", "detect", sys.argv[1:]))
