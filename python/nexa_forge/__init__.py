"""Nexa Forge helper for training processes (standard library only).

A process run by a ``train`` or ``command`` job gets its contract through environment
variables (see DESIGN.md, "The job contract for processes"). This module wraps them::

    import nexa_forge as nf

    start = 0
    if nf.resumed():
        ckpt = nf.latest_checkpoint()
        start = load(ckpt)
    for step in range(start, total):
        loss = train_step()
        nf.report(step, loss=loss)
        if step % 100 == 0 or nf.should_stop():
            with nf.mark_checkpoint(step) as path:
                save(path)
        if nf.should_stop():
            break
"""

from ._helper import (
    COMPLETE_MARKER,
    Checkpoint,
    checkpoint_dir,
    inputs_dir,
    install_stop_handler,
    latest_checkpoint,
    list_checkpoints,
    mark_checkpoint,
    outputs_dir,
    report,
    request_stop,
    resumed,
    should_stop,
)

__all__ = [
    "COMPLETE_MARKER",
    "Checkpoint",
    "checkpoint_dir",
    "inputs_dir",
    "install_stop_handler",
    "latest_checkpoint",
    "list_checkpoints",
    "mark_checkpoint",
    "outputs_dir",
    "report",
    "request_stop",
    "resumed",
    "should_stop",
]
