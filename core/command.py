"""One demo command from the command line: flags -> its typed config -> the command's function.

    # speech/ctc/__main__.py: `python -m speech.ctc train --max-steps 3`
    sys.exit(run(COMMANDS, sys.argv[1:], prog="python -m speech.ctc"))

Bad input ends with one line on stderr: exit 2 for usage errors, 1 for everything else; Ctrl-C
says how to continue (130).
"""

import inspect
import sys
import typing
from collections.abc import Callable
from pathlib import Path

from core.checkpoint import read_meta
from core.errors import ShowcaseError, UsageError
from core.parse import parse
from core.run import CHECKPOINT


def run(commands: dict[str, Callable], argv: list[str], prog: str) -> int:
    """Run `<command> [flags]` (argv) with one of `commands`; return the exit code."""
    cfg = None
    try:
        if not argv or argv[0] not in commands:
            got = f"unknown command {argv[0]!r}" if argv else "missing command"
            raise UsageError(f"{got} for {prog}: choose from {', '.join(commands)}")
        command = commands[argv[0]]
        cfg = parse(config_class(command), argv[1:], prog=f"{prog} {argv[0]}")
        command(cfg)
    except ShowcaseError as exc:
        return fail(exc)
    except KeyboardInterrupt:
        print(f"interrupted: {resume_hint(cfg)}", file=sys.stderr)
        return 130
    return 0


def config_class(command: Callable) -> type:
    """The config dataclass a command takes (its first parameter; any others have defaults, for
    callers in Python)."""
    first = next(iter(inspect.signature(command).parameters))
    return typing.get_type_hints(command)[first]


def resume_hint(cfg) -> str:
    """What an interrupted command can do next, judged by the checkpoint really on disk."""
    if cfg is None or not hasattr(cfg, "resume"):  # not a training command
        return "nothing to continue"
    ckpt = Path(cfg.out_dir) / CHECKPOINT
    if not ckpt.exists():
        return f"no checkpoint was written yet in {cfg.out_dir} (--ckpt-every N writes them)"
    step = read_meta(ckpt).get("state", {}).get("step")
    return f"continue with --resume --out-dir {cfg.out_dir} (checkpoint at step {step})"


def fail(exc: ShowcaseError) -> int:
    """Say `exc` in one line on stderr (`showcase: error: ...`); return its exit code."""
    kind = "usage error" if isinstance(exc, UsageError) else "error"
    message = " ".join(str(exc).split())  # always one line
    print(f"showcase: {kind}: {message}", file=sys.stderr)
    return exc.exit_code
