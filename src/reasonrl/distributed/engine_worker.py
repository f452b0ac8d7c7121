"""One rollout engine inside a Ray actor: built from the policy's config, tokenizer and weights in the
object store (no shared file system between nodes), streaming each response as it ends.

A plain class: `replicas.py` wraps it with `ray.remote`. The actor runs two threads (`max_concurrency=2`) so
that `abort` and `ping` get through while `generate_stream` decodes.
"""

from __future__ import annotations

import os
import queue
import tempfile
import threading
import time
from collections import deque
from collections.abc import Iterator, Sequence
from typing import Any

import torch

from reasonrl.distributed.cluster import import_like_the_driver
from reasonrl.distributed.weights import WeightTransport
from reasonrl.engines.base import Engine, Generation, GenerationRequest, SamplingSettings, TokenScores


class EngineWorker:
    """`kind` (hf or vllm) on `weights` (version `version`, as `transport` published them), on the GPU when the
    actor holds one."""

    def __init__(
        self,
        kind: str,
        model_config: Any,
        tokenizer: Any,
        weights: Any,
        *,
        transport: WeightTransport,
        version: int,
        seed: int,
        dtype: str,
        threads: int,
        max_model_len: int,
        options: dict[str, Any],
        sys_path: list[str],
    ) -> None:
        import_like_the_driver(sys_path)
        torch.set_num_threads(threads)
        self.device = "cuda" if torch.cuda.is_available() else "cpu"
        self.transport = transport
        named = transport.receive(weights, "cpu")
        self.engine = self._build(kind, model_config, tokenizer, named, seed, dtype, max_model_len, options)
        self.engine.version = version
        self._aborted: deque[str] = deque(maxlen=64)  # call ids told to stop (an abort may arrive first)

    def _build(
        self,
        kind: str,
        model_config: Any,
        tokenizer: Any,
        named: list[tuple[str, torch.Tensor]],
        seed: int,
        dtype: str,
        max_model_len: int,
        options: dict[str, Any],
    ) -> Engine:
        from transformers import AutoModelForCausalLM

        model = AutoModelForCausalLM.from_config(model_config, dtype=getattr(torch, dtype))
        model.load_state_dict(dict(named))
        if kind == "hf":
            from reasonrl.engines.hf import HFEngine

            return HFEngine(model.to(self.device).eval(), tokenizer, seed=seed)
        from reasonrl.engines.factory import vllm_engine

        # vLLM loads from a folder: this node's own copy of the weights it was sent.
        folder = tempfile.mkdtemp(prefix="reasonrl-engine-")
        model.save_pretrained(folder)
        tokenizer.save_pretrained(folder)
        return vllm_engine(model_dir=folder, seed=seed, dtype=dtype, max_model_len=max_model_len, **options)

    def ping(self) -> dict[str, Any]:
        import ray

        return {"pid": os.getpid(), "version": self.engine.version, "node": ray.get_runtime_context().get_node_id()}

    def load(self, weights: Any, version: int) -> int:
        self.engine.update_weights(self.transport.receive(weights, self.device), version)
        return version

    def abort(self, call_id: str) -> None:
        self._aborted.append(call_id)

    def generate_stream(
        self, call_id: str, requests: Sequence[GenerationRequest], sampling: SamplingSettings
    ) -> Iterator[tuple[str, Any]]:
        """Yields ("finished", [(row, generation), ...]) as responses end, then ("done", (the generations not
        yet reported by row, compute seconds)). An `abort(call_id)` cuts the responses still running short."""
        events: queue.Queue[tuple[str, Any]] = queue.Queue()
        reported: set[int] = set()

        def on_finish(row: int, generation: Generation) -> bool:
            reported.add(row)
            events.put(("finished", (row, generation)))
            return False

        def run() -> None:
            started = time.perf_counter()
            try:
                generations = self.engine.generate(  # type: ignore[call-arg]
                    requests, sampling, on_finish=on_finish, should_abort=lambda: call_id in self._aborted
                )
            except BaseException as error:  # re-raised in the generator, on the caller's side
                events.put(("error", error))
                return
            rest = {row: g for row, g in enumerate(generations) if row not in reported}
            events.put(("done", (rest, time.perf_counter() - started)))

        threading.Thread(target=run, name="reasonrl-generate", daemon=True).start()
        while True:
            kind, payload = events.get()
            finished: list[tuple[int, Generation]] = []
            while kind == "finished":  # one message for every response that has ended by now (a Ray yield
                finished.append(payload)  # costs about a millisecond: one per response halved the demo's speed)
                try:
                    kind, payload = events.get_nowait()
                except queue.Empty:
                    kind = ""
            if finished:
                yield "finished", finished
            if kind == "error":
                raise payload
            if kind == "done":
                yield kind, payload
                return

    def generate(
        self, requests: Sequence[GenerationRequest], sampling: SamplingSettings
    ) -> tuple[list[Generation], float]:
        """Every response at once, with the compute seconds: a call nothing cuts short needs no stream."""
        started = time.perf_counter()
        generations = self.engine.generate(requests, sampling)
        return generations, time.perf_counter() - started

    def score(self, requests: Sequence[GenerationRequest], distributions: bool = False) -> list[TokenScores]:
        return self.engine.score(requests, distributions)

    def rng_state(self) -> dict[str, object]:
        return self.engine.rng_state()

    def set_rng_state(self, state: dict[str, object]) -> None:
        self.engine.set_rng_state(state)
