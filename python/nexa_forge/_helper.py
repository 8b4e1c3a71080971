"""Implementation of the :mod:`nexa_forge` helper. Standard library only."""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import signal
import sys
import threading
from typing import Any, List, Optional

#: The file written last into a checkpoint folder to mark it complete (the worker uploads it then).
COMPLETE_MARKER = "COMPLETE"

_STEP_RE = re.compile(r"(\d+)$")
_stop = threading.Event()
_installed = False
_lock = threading.Lock()


def _env_dir(name: str, fallback: str) -> str:
    path = os.environ.get(name) or fallback
    os.makedirs(path, exist_ok=True)
    return path


def checkpoint_dir() -> str:
    """``$NEXA_CHECKPOINT_DIR`` (created if missing); ``./checkpoints`` outside a job."""
    return _env_dir("NEXA_CHECKPOINT_DIR", os.path.join(os.getcwd(), "checkpoints"))


def outputs_dir() -> str:
    """``$NEXA_OUTPUTS_DIR`` (created if missing); ``./outputs`` outside a job."""
    return _env_dir("NEXA_OUTPUTS_DIR", os.path.join(os.getcwd(), "outputs"))


def inputs_dir() -> str:
    """``$NEXA_INPUTS_DIR``; ``./inputs`` outside a job (not created: inputs are read-only)."""
    return os.environ.get("NEXA_INPUTS_DIR") or os.path.join(os.getcwd(), "inputs")


def resumed() -> bool:
    """Whether the worker restored a checkpoint before this attempt (``NEXA_RESUME=1``)."""
    return os.environ.get("NEXA_RESUME") == "1"


def _is_rank_zero() -> bool:
    return os.environ.get("RANK", "0") == "0"


def _clean(value: Any) -> Any:
    # JSON has no NaN/Infinity: a diverged loss is reported as null rather than breaking the line.
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if hasattr(value, "item") and callable(value.item):  # numpy / torch scalars
        try:
            return _clean(value.item())
        except (TypeError, ValueError):
            return str(value)
    return value


def report(step: int, **metrics: Any) -> None:
    """Appends ``{"step": step, **metrics}`` as one JSON line to ``$NEXA_METRICS_FILE``.

    The worker tails that file and streams every numeric field as a metric series. Outside a
    job (no ``NEXA_METRICS_FILE``) the line is printed to stdout. Under ``torchrun`` only rank 0
    reports, so a metric is not counted once per process.

    >>> report(12, loss=2.31, lr=3e-4)
    """
    if not isinstance(step, int) or isinstance(step, bool) or step < 0:
        raise ValueError(f"step must be a non-negative int, got {step!r}")
    if not _is_rank_zero():
        return
    record = {"step": step}
    for name, value in metrics.items():
        record[name] = _clean(value)
    line = json.dumps(record, allow_nan=False, separators=(",", ":")) + "\n"
    path = os.environ.get("NEXA_METRICS_FILE")
    if not path:
        sys.stdout.write(line)
        sys.stdout.flush()
        return
    with _lock:
        # One write per line in append mode: concurrent appenders never interleave within a line.
        with open(path, "a", encoding="utf-8") as f:
            f.write(line)
            f.flush()


class Checkpoint:
    """A checkpoint folder being written: ``path`` exists; :meth:`complete` writes ``COMPLETE`` last.

    Used as a context manager, it is completed when the block ends without an exception and
    left incomplete (ignored by the worker and by :func:`latest_checkpoint`) when it raises.
    """

    def __init__(self, step: int, path: str) -> None:
        self.step = step
        self.path = path
        self.completed = False

    def complete(self) -> str:
        """Flushes the folder's files to disk, then writes the empty ``COMPLETE`` marker."""
        if self.completed:
            return self.path
        for root, _dirs, files in os.walk(self.path):
            for name in files:
                try:
                    fd = os.open(os.path.join(root, name), os.O_RDONLY)
                    try:
                        os.fsync(fd)
                    finally:
                        os.close(fd)
                except OSError:
                    pass
        with open(os.path.join(self.path, COMPLETE_MARKER), "w", encoding="utf-8"):
            pass
        self.completed = True
        return self.path

    def __enter__(self) -> str:
        return self.path

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.complete()

    def __fspath__(self) -> str:
        return self.path

    def __repr__(self) -> str:
        return f"Checkpoint(step={self.step}, path={self.path!r}, completed={self.completed})"


def mark_checkpoint(step: int) -> Checkpoint:
    """Creates ``$NEXA_CHECKPOINT_DIR/step-<step>`` for the caller to write into.

    The checkpoint counts once ``COMPLETE`` is written in it, last: call ``.complete()`` or use
    it as a context manager. A leftover folder of the same step (an interrupted write) is
    replaced.

    >>> with mark_checkpoint(100) as path:
    ...     torch.save(state, os.path.join(path, "state.pt"))
    """
    if not isinstance(step, int) or isinstance(step, bool) or step < 0:
        raise ValueError(f"step must be a non-negative int, got {step!r}")
    path = os.path.join(checkpoint_dir(), f"step-{step}")
    if os.path.exists(path):
        shutil.rmtree(path)
    os.makedirs(path)
    return Checkpoint(step, path)


def _step_of(name: str) -> Optional[int]:
    m = _STEP_RE.search(name)
    return int(m.group(1)) if m else None


def list_checkpoints() -> List[str]:
    """Complete checkpoint folders in ``$NEXA_CHECKPOINT_DIR``, oldest step first."""
    root = os.environ.get("NEXA_CHECKPOINT_DIR") or os.path.join(os.getcwd(), "checkpoints")
    try:
        names = os.listdir(root)
    except FileNotFoundError:
        return []
    found = []
    for name in names:
        path = os.path.join(root, name)
        if os.path.isdir(path) and os.path.isfile(os.path.join(path, COMPLETE_MARKER)):
            step = _step_of(name)
            found.append((step if step is not None else -1, os.path.getmtime(path), path))
    found.sort()
    return [p for _s, _t, p in found]


def latest_checkpoint() -> Optional[str]:
    """The complete checkpoint folder with the highest step, or None."""
    all_ = list_checkpoints()
    return all_[-1] if all_ else None


def _on_term(signum, frame) -> None:  # noqa: ARG001
    _stop.set()


def install_stop_handler() -> bool:
    """Makes SIGTERM set the stop flag instead of ending the process (idempotent).

    Called by :func:`should_stop` on first use, so a script that never asks keeps the default
    behaviour (SIGTERM ends it). Call it early to catch a SIGTERM that arrives before the first
    :func:`should_stop`. Returns False where no handler can be installed (not the main thread).
    """
    global _installed
    if _installed:
        return True
    if threading.current_thread() is not threading.main_thread():
        return False
    signal.signal(signal.SIGTERM, _on_term)
    _installed = True
    return True


def request_stop() -> None:
    """Sets the stop flag by hand (as a SIGTERM would)."""
    _stop.set()


def should_stop() -> bool:
    """True once SIGTERM arrived (cancel, guardrail, preemption): write a final checkpoint and exit 0."""
    install_stop_handler()
    return _stop.is_set()
