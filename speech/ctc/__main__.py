import sys

from core.cli import run_demo

sys.exit(run_demo("speech", "ctc", sys.argv[1:]))
