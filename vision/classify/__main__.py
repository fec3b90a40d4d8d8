import sys

from core.cli import run_demo

sys.exit(run_demo("vision", "classify", sys.argv[1:]))
