"""APScheduler wiring: the node's periodic work, run in one process beside the workers.

Today that is signing tree heads; predictors and anchoring join it later. It
runs as its own process (``appliance scheduler``, started by ``appliance
serve``) so that exactly one copy runs however many gunicorn workers there are.
"""

from __future__ import annotations

import logging
import signal
import threading

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.interval import IntervalTrigger

from appliance.node import Node

__all__ = ["build_scheduler", "run_scheduler", "sign_checkpoint_job"]

log = logging.getLogger("appliance.scheduler")


def sign_checkpoint_job(node: Node) -> None:
    """Sign a tree head when the log grew since the last one."""
    try:
        node.ledger.refresh()
        signed = node.ledger.sign_checkpoint(only_if_grown=True)
        log.info("checkpoint at size %d", signed.checkpoint.tree_size)
    except Exception:
        log.exception("signing a checkpoint failed")


def build_scheduler(node: Node) -> BackgroundScheduler:
    scheduler = BackgroundScheduler(
        timezone="UTC",
        job_defaults={
            "coalesce": True,  # after a pause, one run instead of a burst
            "max_instances": 1,  # never two overlapping runs of one job
            "misfire_grace_time": 30,
        },
    )
    scheduler.add_job(
        sign_checkpoint_job,
        IntervalTrigger(seconds=node.settings.ledger.checkpoint_interval_seconds),
        args=[node],
        id="ledger.checkpoint",
        name="sign ledger checkpoint",
        replace_existing=True,
    )
    return scheduler


def run_scheduler(node: Node, stop: threading.Event | None = None) -> None:
    """Run until SIGTERM/SIGINT (or ``stop`` is set)."""
    stop = stop or threading.Event()
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stop.set())
    scheduler = build_scheduler(node)
    scheduler.start()
    sign_checkpoint_job(node)
    try:
        stop.wait()
    finally:
        scheduler.shutdown(wait=True)
