"""Rollout engine on a transformers model: batched decoding with a KV cache, always available.

Written as its own decode loop rather than `model.generate` for three reasons: `generate` reports scores
after temperature/top-k/top-p processing, while we need the raw temperature-1 log-prob of each sampled
token (the learner's definition); finished rows are dropped from the batch and cache as they stop, so a
long tail does not make short answers pay; and one explicit torch.Generator makes sampling reproducible
and its state checkpointable for bitwise resume.

`generate` can also stop early (partial rollouts, APRIL): `on_finish` hears about each response the step it
ends, and once it answers True every unfinished response is cut off with finish reason "abort" and the
tokens it has, ready to be continued later through `GenerationRequest.response_prefix_ids`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

import torch
from transformers import DynamicCache, LogitsProcessorList, PreTrainedModel, PreTrainedTokenizerBase
from transformers.generation.logits_process import TemperatureLogitsWarper, TopKLogitsWarper, TopPLogitsWarper

from reasonrl.algorithms.speculative import residual_distribution
from reasonrl.engines.base import FinishReason, Generation, GenerationRequest, SamplingSettings, TokenScores
from reasonrl.engines.stops import StopChecker, response_text


class HFEngine:
    """Generates with `model`; when `model` is the learner's own module (colocated), weight updates are free."""

    def __init__(
        self,
        model: PreTrainedModel,
        tokenizer: PreTrainedTokenizerBase,
        *,
        seed: int = 0,
        shares_learner_module: bool = False,
        max_batch_size: int = 256,
    ) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.shares_learner_module = shares_learner_module
        self.max_batch_size = max_batch_size
        self.version = 0
        self.device = next(model.parameters()).device
        self.generator = torch.Generator(device=self.device).manual_seed(seed)
        eos = model.generation_config.eos_token_id if model.generation_config is not None else None
        eos_ids = eos if isinstance(eos, list) else [eos] if eos is not None else []
        self.eos_ids = frozenset({*eos_ids, tokenizer.eos_token_id} - {None})
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else min(self.eos_ids)

    def generate(
        self,
        requests: Sequence[GenerationRequest],
        sampling: SamplingSettings,
        *,
        on_finish: FinishCallback | None = None,
        should_abort: Callable[[], bool] | None = None,
    ) -> list[Generation]:
        """One generation per request, in order. `on_finish(index, generation)` is called as request `index`
        ends; once it returns True, or `should_abort()` does after a decode step, the requests still running
        end with finish reason "abort"."""
        results: list[Generation] = []
        aborted = False
        for start in range(0, len(requests), self.max_batch_size):
            chunk = requests[start : start + self.max_batch_size]
            if aborted:  # never started: nothing generated, continue them later like any aborted request
                results.extend(Generation([], [], "abort") for _ in chunk)
                continue
            callback = None if on_finish is None else _offset(on_finish, start)
            generations, aborted = self._generate_batch(chunk, sampling, callback, should_abort)
            results.extend(generations)
        return results

    def _warpers(self, sampling: SamplingSettings) -> LogitsProcessorList:
        warpers = LogitsProcessorList()
        if sampling.temperature not in (0.0, 1.0):
            warpers.append(TemperatureLogitsWarper(sampling.temperature))
        if sampling.top_k > 0:
            warpers.append(TopKLogitsWarper(sampling.top_k))
        if sampling.top_p < 1.0:
            warpers.append(TopPLogitsWarper(sampling.top_p))
        return warpers

    @torch.inference_mode()
    def _generate_batch(
        self,
        requests: Sequence[GenerationRequest],
        sampling: SamplingSettings,
        on_finish: FinishCallback | None,
        should_abort: Callable[[], bool] | None,
    ) -> tuple[list[Generation], bool]:
        """The generations of one batch, and whether `on_finish` asked to abort the rest."""
        if sampling.greedy and any(r.residual_of is not None for r in requests):
            raise ValueError("a residual first token (residual_of) needs sampling; greedy decoding has none")
        contexts = [r.prompt_ids + r.response_prefix_ids for r in requests]
        budgets = token_budgets(requests, sampling)
        width = max(map(len, contexts))
        input_ids = torch.full((len(requests), width), self.pad_id, dtype=torch.long, device=self.device)
        attention = torch.zeros_like(input_ids)
        for row, ids in enumerate(contexts):  # left padding keeps every row's next token at the end
            input_ids[row, width - len(ids) :] = torch.tensor(ids, device=self.device)
            attention[row, width - len(ids) :] = 1
        positions = (attention.cumsum(-1) - 1).clamp(min=0)

        was_training = self.model.training
        self.model.eval()
        warpers = self._warpers(sampling)
        stops = StopChecker(self.tokenizer, sampling.stop) if sampling.stop else None
        tokens: list[list[int]] = [[] for _ in requests]
        logprobs: list[list[float]] = [[] for _ in requests]
        finish: list[FinishReason] = ["length"] * len(requests)
        reported: dict[int, Generation] = {}  # what on_finish was given, returned as is (decoded once)
        aborted = False
        active = torch.arange(len(requests), device=self.device)  # original row of each batch row
        cache = DynamicCache(config=self.model.config)
        generators = self._request_generators(requests)
        step_ids, step_positions = input_ids, positions
        try:
            for step in range(max(budgets, default=0)):
                logits = (
                    self.model(
                        input_ids=step_ids,
                        attention_mask=attention,
                        position_ids=step_positions,
                        past_key_values=cache,
                        use_cache=True,
                    )
                    .logits[:, -1, :]
                    .float()
                )
                raw_logprobs = torch.log_softmax(logits, dim=-1)
                if sampling.greedy:
                    chosen = logits.argmax(dim=-1)
                else:
                    probs = torch.softmax(warpers(step_ids, logits), dim=-1)
                    if step == 0:
                        probs = _away_from_residuals(probs, requests)
                    chosen = self._sample(probs, active, generators)
                chosen_logprobs = raw_logprobs.gather(-1, chosen[:, None])[:, 0]

                keep = []
                for batch_row, (row, token, logprob) in enumerate(
                    zip(active.tolist(), chosen.tolist(), chosen_logprobs.tolist(), strict=True)
                ):
                    tokens[row].append(token)
                    logprobs[row].append(logprob)
                    if (
                        token in self.eos_ids
                        or token in sampling.stop_token_ids
                        or (
                            stops is not None
                            and stops.hit(self._context(requests[row], tokens[row]), new=len(tokens[row]))
                        )
                    ):
                        finish[row] = "stop"
                    elif step + 1 < budgets[row]:
                        keep.append(batch_row)
                        continue
                    if on_finish is not None:
                        reported[row] = Generation(
                            tokens[row], logprobs[row], finish[row], self.text(tokens[row], sampling)
                        )
                        aborted = bool(on_finish(row, reported[row])) or aborted
                if keep and should_abort is not None and should_abort():
                    aborted = True
                if aborted:
                    for row in active[keep].tolist() if keep else []:
                        finish[row] = "abort"
                    break
                if not keep:
                    break
                index = torch.tensor(keep, device=self.device)
                if len(keep) < len(active):  # drop finished rows from the batch and the cache
                    cache.batch_select_indices(index)
                    attention = attention.index_select(0, index)
                    active = active.index_select(0, index)
                    chosen = chosen.index_select(0, index)
                    step_positions = step_positions.index_select(0, index)
                attention = torch.cat([attention, attention.new_ones(len(keep), 1)], dim=-1)
                step_positions = step_positions[:, -1:] + 1
                step_ids = chosen[:, None]
        finally:
            self.model.train(was_training)
        generations = [
            reported.get(row) or Generation(response_ids=t, logprobs=lp, finish_reason=f, text=self.text(t, sampling))
            for row, (t, lp, f) in enumerate(zip(tokens, logprobs, finish, strict=True))
        ]
        return generations, aborted

    def _request_generators(self, requests: Sequence[GenerationRequest]) -> list[torch.Generator] | None:
        """One generator per request when requests carry their own seeds (all or none), else None (the engine's)."""
        seeds = [r.sampling_seed() for r in requests]
        if all(seed is None for seed in seeds):
            return None
        if any(seed is None for seed in seeds):
            raise ValueError(
                "requests of one generate call carry their own seeds all or none (rollout.seed_per_request)"
            )
        return [torch.Generator(device=self.device).manual_seed(int(seed)) for seed in seeds]  # type: ignore[arg-type]

    def _sample(
        self, probs: torch.Tensor, active: torch.Tensor, generators: list[torch.Generator] | None
    ) -> torch.Tensor:
        """One token per batch row: from the engine's generator in one call, or row by row from each request's
        own (a row's draws then do not depend on which other rows share its batch)."""
        if generators is None:
            return torch.multinomial(probs, 1, generator=self.generator)[:, 0]
        rows = [torch.multinomial(probs[i], 1, generator=generators[row]) for i, row in enumerate(active.tolist())]
        return torch.cat(rows)

    @staticmethod
    def _context(request: GenerationRequest, tokens: list[int]) -> list[int]:
        """The whole response so far for the stop check (a stop string may span the continuation point): prefix
        + new tokens, copied only when continuing."""
        return request.response_prefix_ids + tokens if request.response_prefix_ids else tokens

    def text(self, tokens: Sequence[int], sampling: SamplingSettings) -> str:
        return response_text(self.tokenizer, tokens, sampling.stop)

    @torch.inference_mode()
    def score(self, requests: Sequence[GenerationRequest], distributions: bool = False) -> list[TokenScores]:
        """Teacher-forced log-probs of each request's `response_prefix_ids` (and, with `distributions`, the
        probabilities at each of its positions), in chunks that bound the logits held at once."""
        results: list[TokenScores] = []
        kept = max((len(r.response_prefix_ids) + 1 for r in requests), default=1)  # logits kept per row
        rows = max(1, min(self.max_batch_size, SCORE_LOGITS_BUDGET // (kept * self.model.config.vocab_size)))
        for start in range(0, len(requests), rows):
            results.extend(self._score_batch(requests[start : start + rows], distributions))
        return results

    def _score_batch(self, requests: Sequence[GenerationRequest], distributions: bool) -> list[TokenScores]:
        contexts = [r.prompt_ids + r.response_prefix_ids for r in requests]
        width = max(map(len, contexts))
        keep = max(len(r.response_prefix_ids) for r in requests) + 1  # the logits that predict response tokens
        input_ids = torch.full((len(requests), width), self.pad_id, dtype=torch.long, device=self.device)
        attention = torch.zeros_like(input_ids)
        for row, ids in enumerate(contexts):  # left padding: every response ends at the last position
            input_ids[row, width - len(ids) :] = torch.tensor(ids, device=self.device)
            attention[row, width - len(ids) :] = 1
        positions = (attention.cumsum(-1) - 1).clamp(min=0)
        was_training = self.model.training
        self.model.eval()
        try:
            logits = self.model(
                input_ids=input_ids, attention_mask=attention, position_ids=positions, logits_to_keep=keep
            ).logits.float()
        finally:
            self.model.train(was_training)
        logprobs = torch.log_softmax(logits[:, :-1], dim=-1)  # position j predicts the token at j + 1
        scores = []
        for row, request in enumerate(requests):
            length = len(request.response_prefix_ids)
            rows = logprobs[row, logprobs.shape[1] - length :]
            tokens = torch.tensor(request.response_prefix_ids, dtype=torch.long, device=self.device)
            picked = rows.gather(-1, tokens[:, None])[:, 0].tolist() if length else []
            scores.append(TokenScores(picked, rows.exp().cpu() if distributions else None))
        return scores

    def update_weights(self, named_tensors: Iterable[tuple[str, torch.Tensor]], version: int) -> None:
        if not self.shares_learner_module:
            state = dict(named_tensors)
            _, unexpected = self.model.load_state_dict(state, strict=False)
            if unexpected:
                raise ValueError(f"weights not in the engine's model: {unexpected[:5]}")
        self.version = version

    def rng_state(self) -> dict[str, object]:
        return {"generator": self.generator.get_state()}

    def set_rng_state(self, state: dict[str, object]) -> None:
        self.generator.set_state(state["generator"])  # type: ignore[arg-type]

    def close(self) -> None:
        """Nothing to release: the model belongs to whoever built it."""


def hf_engine_from_folder(model_dir: str, *, seed: int = 0, device: str = "cpu") -> HFEngine:
    """An hf engine on a Hugging Face folder's own weights, on `device`: what an `EngineProcess` builds when it
    runs the hf engine in a process of its own (`rollout.placement: process`)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(model_dir).to(device).eval()
    return HFEngine(model, AutoTokenizer.from_pretrained(model_dir), seed=seed)


def token_budgets(requests: Sequence[GenerationRequest], sampling: SamplingSettings) -> list[int]:
    """Each request's new-token budget as a host list of ints, not a tensor: the decode loop checks it for every
    row at every step, and indexing a tensor per row costs a dispatch (and on a GPU a device sync) each time:
    0.57 ms per step at 256 rows on a CPU."""
    return [int(r.max_new_tokens if r.max_new_tokens is not None else sampling.max_new_tokens) for r in requests]


# Logit entries one scoring chunk may hold (rows x positions x vocabulary): 2^27 floats, 512 MiB.
SCORE_LOGITS_BUDGET = 1 << 27


def _away_from_residuals(probs: torch.Tensor, requests: Sequence[GenerationRequest]) -> torch.Tensor:
    """The first step's sampling probabilities, with each row that asks for it (`residual_of`) replaced by
    its residual norm(max(0, p - q)); at step 0 batch row i is request i."""
    rows = [i for i, r in enumerate(requests) if r.residual_of is not None]
    if not rows:
        return probs
    probs = probs.clone()
    for row in rows:
        draft = requests[row].residual_of
        assert draft is not None
        probs[row] = residual_distribution(probs[row], draft.to(probs.device)).to(probs.dtype)
    return probs


FinishCallback = Callable[[int, Generation], bool]
"""`on_finish(request_index, generation)`: True aborts the requests still running."""


def _offset(on_finish: FinishCallback, start: int) -> FinishCallback:
    """`on_finish` for a batch that starts at request `start`: batch rows become request indices."""
    return lambda row, generation: on_finish(start + row, generation)
