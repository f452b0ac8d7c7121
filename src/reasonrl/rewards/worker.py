"""The main loop of a reward worker process (see `pool.RewardPool` for the protocol's other side).

Messages from the pool: `("warm", terms)` builds verifiers ahead of scoring so that imports never count
against a sample's time limit, `("score", items)` scores `(index, terms, response, answer, meta)` items in
order, `None` stops. Replies: `("ready",)` after start-up and after each warm-up, one
`("result", index, RewardResult)` per item as soon as it is scored (so the pool always knows which sample
a worker is on), and `("unreadable", message)` for a batch that did not unpickle here.
"""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Sequence
from multiprocessing.connection import Connection

from reasonrl.rewards.processes import adopt_import_path
from reasonrl.rewards.single_response import Term, score_sample, verifier_for


def serve(conn: Connection, path: list[str], terms: Sequence[Term], timeout_seconds: float) -> None:
    """Score batches from `conn` until told to stop or the pool goes away."""
    # Ctrl-C reaches the whole process group; the pool decides when workers stop, not the terminal.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    adopt_import_path(path)
    _warm(terms)
    conn.send(("ready",))
    while True:
        try:
            message = conn.recv()
        except EOFError:
            return
        except Exception as exc:  # a sample whose answer or meta holds a class this process cannot import
            conn.send(("unreadable", f"{type(exc).__name__}: {exc}"))
            continue
        if message is None:
            return
        kind, payload = message
        if kind == "warm":
            _warm(payload)
            conn.send(("ready",))
            continue
        for index, item_terms, response, answer, meta in payload:
            conn.send(("result", index, score_sample(item_terms, response, answer, meta, timeout_seconds)))


def _warm(terms: Sequence[Term]) -> None:
    for term in terms:
        # A term that fails to build here fails again on each sample that uses it, and is recorded there.
        with contextlib.suppress(Exception):
            verifier_for(term)
