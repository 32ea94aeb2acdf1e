"""``main``: the ``jaxdl`` command. It parses the arguments, runs one command with the
library's messages on standard error, and turns failures into exit statuses."""

from __future__ import annotations

import contextlib
import logging
import os
import sys

from jaxdl.cli.arguments import build_parser, resumed_args
from jaxdl.cli.catalog import list_names
from jaxdl.cli.inference import evaluate, predict
from jaxdl.cli.training import train
from jaxdl.compile_cache import use_compilation_cache
from jaxdl.host_memory import keep_freed_memory


class _StderrHandler(logging.StreamHandler):
    """A handler writing to the ``sys.stderr`` of the moment (not the one at creation)."""

    def __init__(self):
        super().__init__(sys.stderr)

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value):
        pass


@contextlib.contextmanager
def _messages_to_stderr(level: int):
    """The library's messages (the ``jaxdl`` logger) on standard error while the command runs."""
    logger = logging.getLogger("jaxdl")
    handler = _StderrHandler()
    handler.setLevel(level)
    handler.setFormatter(logging.Formatter("jaxdl: %(message)s"))
    previous = logger.level, logger.propagate
    logger.addHandler(handler)
    # the command shows them once: not again through a handler on the root logger (absl,
    # which orbax imports, installs one)
    logger.propagate = False
    if logger.getEffectiveLevel() > level:
        logger.setLevel(level)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(previous[0])
        logger.propagate = previous[1]


def _quiet_stdout() -> None:
    """Standard output was closed by its reader (``jaxdl list | head``): send what is left
    to /dev/null, so that Python's final flush raises nothing either."""
    with contextlib.suppress(OSError, ValueError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)


# each command's function: parsed ``args`` in, the exit status out
COMMANDS = {"train": train, "predict": predict, "evaluate": evaluate, "list": list_names}


def main(argv: list[str] | None = None) -> int:
    """The ``jaxdl`` command; returns its exit status: 0 done, 1 the run failed (a NaN loss,
    a missing file), 2 a bad argument, 130 (143) stopped by Ctrl-C (SIGTERM)."""
    keep_freed_memory()  # a process of its own: step buffers reused (jaxdl.host_memory)
    use_compilation_cache()  # a second run of the same settings loads its programs
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    level = logging.WARNING if getattr(args, "quiet", False) else logging.INFO
    with _messages_to_stderr(level):
        try:
            if args.command == "train" and args.resume:
                args = resumed_args(argv, args)
            status = COMMANDS[args.command](args)
            sys.stdout.flush()
        except BrokenPipeError:  # the reader of standard output went away: not an error
            _quiet_stdout()
            return 0
        except (ValueError, TypeError) as error:  # a bad argument: a usage error
            print(f"jaxdl: error: {error}", file=sys.stderr)
            return 2
        except (FloatingPointError, OSError, RuntimeError, ImportError) as error:
            print(f"jaxdl: error: {error}", file=sys.stderr)  # the run failed (NaN, disk, ...)
            return 1
        except KeyboardInterrupt:  # Ctrl-C outside training: a line, not a traceback
            print("jaxdl: interrupted", file=sys.stderr)
            return 130
    return status
