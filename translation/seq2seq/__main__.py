import sys

from core.cli import run_demo

sys.exit(run_demo("translation", "seq2seq", sys.argv[1:]))
