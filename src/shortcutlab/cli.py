"""What every stage script shares: params loading and a clean, non-zero exit on bad input (2), or on a model
that fails its quality gate (3)."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable

from .errors import DataError, GateError
from .params import ParamsError, load


def run_stage(
    name: str, main: Callable[[dict], None], params_path: str = "params.yaml", exit_fast: bool = True
) -> None:
    """Validate the whole params file, then run ``main(params)``. Bad input exits 2 with a message that
    names the problem; nothing is written because stages only write through atomic renames."""
    t0 = time.perf_counter()
    try:
        params = load(params_path)
        main(params)
    except GateError as e:
        print(f"{name}: error: {e}", file=sys.stderr)
        sys.exit(3)
    except (ParamsError, DataError, FileNotFoundError, KeyError, ValueError) as e:
        msg = e.args[0] if isinstance(e, KeyError) and e.args else e
        print(f"{name}: error: {msg}", file=sys.stderr)
        sys.exit(2)
    print(f"{name}: done in {time.perf_counter() - t0:.1f}s", file=sys.stderr)
    if exit_fast:
        # Every output is already renamed into place and closed; skip the interpreter's teardown (freeing
        # the in-memory dataset and torch's state takes 1-2 s per stage, ~1.5 minutes over a whole repro).
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)
