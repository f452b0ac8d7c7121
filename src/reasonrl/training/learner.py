"""The learner: owns the policy, its optimizer and schedule, and turns a scored batch into updates.

Algorithm-blind (PRIME-RL's idea): it asks `objective.loss_terms` for named loss components and never
branches on the algorithm's name. Gradient accumulation over length-bucketed micro-batches gives the same
gradient as one big batch, because every component is normalised by its mini-batch-wide count. When the
advantage estimator needs values (GAE), the learner also owns a `Critic`.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Any

import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from reasonrl.config.schema import AlgorithmConfig, ModelConfig, TrainConfig
from reasonrl.training.attention_probe import probe_attention
from reasonrl.training.batch import Batch, group_slices
from reasonrl.training.critic import Critic
from reasonrl.training.forward import forward_responses, score_responses
from reasonrl.training.lora import merged_from_gathered, merged_weights
from reasonrl.training.models import load_policy, load_reference, load_tokenizer
from reasonrl.training.objective import (
    Normalisers,
    attention_credit,
    compute_advantages,
    compute_returns,
    loss_terms,
    needs_critic,
    needs_reference,
)
from reasonrl.training.parallel import SINGLE, DataParallel, padding_part
from reasonrl.training.schedules import lr_lambda
from reasonrl.training.stepping import add_metrics, apply_gradients

SHARDS_DIR = "learner"  # a checkpoint's sharded learner state, with several ranks


class Learner:
    def __init__(
        self,
        folder: Path,
        model_config: ModelConfig,
        train: TrainConfig,
        algorithm: AlgorithmConfig,
        device: torch.device,
        *,
        max_new_tokens: int,
        reference_folder: Path | None = None,
        critic_folder: Path | None = None,
        parallel: DataParallel = SINGLE,
    ) -> None:
        """`reference_folder`: the frozen starting policy (default `folder`); `critic_folder`: the critic's
        initial network when the estimator needs one (default the starting policy, a value head on its copy);
        `parallel`: this process's rank among data-parallel learner ranks (`training.parallel`), one by default."""
        self.parallel = parallel
        self.train_config = train
        self.algorithm = algorithm
        self.max_new_tokens = max_new_tokens
        self.device = device
        self.tokenizer: PreTrainedTokenizerBase = load_tokenizer(folder)
        self.pad_id = int(self.tokenizer.pad_token_id)
        # Initial adapter and value-head weights come from the run's seed alone, not from whatever drew from the
        # global generator before (building a cached model, another rank's history): a cold and a warm model
        # cache, or a learner in the driver and one in a rank, start from the same weights.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(train.seed)
            self._build(folder, model_config, algorithm, device, reference_folder, critic_folder)
        policy_steps = train.steps - (algorithm.critic.critic_only_steps if self.critic is not None else 0)
        total_updates = max(1, policy_steps * train.ppo_epochs * train.mini_batches)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lr_lambda(train.lr_schedule, train.lr_warmup_steps, total_updates)
        )
        self.nonfinite_in_a_row = 0

    def _build(
        self,
        folder: Path,
        model_config: ModelConfig,
        algorithm: AlgorithmConfig,
        device: torch.device,
        reference_folder: Path | None,
        critic_folder: Path | None,
    ) -> None:
        """The policy (wrapped for this rank), its reference and optimizer, and the critic when one is needed."""
        train, parallel = self.train_config, self.parallel
        self.model: PreTrainedModel = load_policy(folder, model_config, device)
        self.lora = model_config.lora.enabled
        # The module the update's forward runs through: the model, or its DDP wrapper (FSDP2 shards in place).
        self.trained = parallel.wrap(self.model, trainable=True)
        # With LoRA the frozen base *is* the reference (adapters disabled): no second copy in memory.
        self.reference = (
            parallel.wrap(load_reference(reference_folder or folder, model_config, device), trainable=False)
            if needs_reference(algorithm) and not self.lora
            else None
        )
        self.trainable = [p for p in self.model.parameters() if p.requires_grad]
        self.optimizer = torch.optim.AdamW(
            self.trainable, lr=train.lr, betas=train.adam_betas, weight_decay=train.weight_decay
        )
        self.critic = (
            Critic(
                critic_folder or reference_folder or folder,
                model_config,
                train,
                algorithm.critic,
                device,
                policy_tokenizer=self.tokenizer,
                parallel=parallel,
            )
            if needs_critic(algorithm)
            else None
        )

    # ---- log-probs -----------------------------------------------------------------------------------
    @property
    def needs_old_logprobs(self) -> bool:
        """Whether the pre-update log-probs need a pass of their own.

        With one optimizer step per batch (one epoch, one mini-batch) and no KL in the reward, the policy
        is still the one that produced the batch when the update's forward runs, so that forward's
        detached log-probs *are* the old log-probs (the ratio is exactly 1) and a separate no-grad pass
        would only recompute them (it cost 16-19% of a step on the tiny model). That holds for off-policy
        (async) batches too: the decoupled objective's proximal policy is the policy before this update,
        which is what that forward computes; the behaviour policy's log-probs come from the engine.
        """
        config = self.train_config
        return config.ppo_epochs > 1 or config.mini_batches > 1 or self.algorithm.kl_in_reward

    def policy_logprobs(self, batch: Batch) -> torch.Tensor:
        """Log-probs of the current policy before the update, no gradients."""
        return self._score(self.model, batch)

    def _score(self, model: torch.nn.Module, batch: Batch) -> torch.Tensor:
        budget = self.train_config.micro_batch_tokens
        return score_responses(model, batch, self.pad_id, budget, parallel=self.parallel)[0]  # type: ignore[arg-type]

    def probe_attention(self, batch: Batch, layers: list[int]) -> list[torch.Tensor]:
        """Per row, the attention maps [layers · heads, N, N] of the current policy's probe layers."""
        budget = self.train_config.micro_batch_tokens
        return probe_attention(self.model, batch, self.pad_id, layers, budget, parallel=self.parallel)

    def reference_logprobs(self, batch: Batch) -> torch.Tensor:
        """Log-probs under the frozen initial policy (only called when a KL term needs them)."""
        if self.reference is not None:
            return self._score(self.reference, batch)
        with self.model.disable_adapter():  # type: ignore[attr-defined]
            return self._score(self.model, batch)

    # ---- batch preparation ---------------------------------------------------------------------------
    def prepare(
        self,
        prompt_ids: Sequence[list[int]],
        response_ids: Sequence[list[int]],
        behaviour_logprobs: Sequence[Sequence[float]],
        rewards: Sequence[float],
        group_size: int,
        timer: Callable[[str], AbstractContextManager[Any]] | None = None,
        *,
        tree_paths: Sequence[str] | None = None,
        response_masks: Sequence[Sequence[int] | None] | None = None,
    ) -> tuple[Batch, dict[str, float]]:
        """The batch `update` trains on, from scored responses (rows in groups of `group_size`), and its
        metrics (advantages, attention credit).

        In this order, each only when the config needs it: the pre-update log-probs (`needs_old_logprobs`)
        and the reference's (a KL term), timed as `logprobs`; the critic's values and AsyPPO masks
        (`values`); attention-guided credit weights (`attention`); the advantages; the critic's returns.
        `timer(name)` is a context manager that times each part (a `tracking.Stopwatch`). `tree_paths`: each
        response's path in its group's tree (tree rollouts), for the `tree` advantage; `response_masks`: each
        response's sampled-token mask (multi-turn episodes; 0 on environment tokens, which nothing trains on).
        """
        timed = timer or (lambda name: nullcontext())
        algorithm = self.algorithm
        batch = Batch.from_ids(prompt_ids, response_ids, response_masks)
        batch.behaviour_logprobs = batch.padded(behaviour_logprobs)
        batch.tree_paths = None if tree_paths is None else tuple(tree_paths)
        with timed("logprobs"):
            if self.needs_old_logprobs:
                batch.old_logprobs = self.policy_logprobs(batch)
            if needs_reference(algorithm):
                batch.ref_logprobs = self.reference_logprobs(batch)
        if self.critic is not None:
            with timed("values"):
                batch.fill(**self.critic.evaluate(batch, group_size))
        credit_metrics: dict[str, float] = {}
        if algorithm.attention_credit.enabled:
            with timed("attention"):
                attention = self.probe_attention(batch, algorithm.attention_credit.layers)
            batch.credit_weights, credit_metrics = attention_credit(algorithm.attention_credit, batch, attention)
        batch.advantages, advantage_metrics = compute_advantages(algorithm, rewards, batch, group_size)
        if self.critic is not None:
            batch.returns = compute_returns(algorithm, rewards, batch, group_size)
        return batch, {**advantage_metrics, **credit_metrics}

    # ---- update --------------------------------------------------------------------------------------
    def update(self, batch: Batch, group_size: int) -> dict[str, float]:
        """`ppo_epochs` passes over `batch`, each split into `mini_batches` optimizer steps by whole groups;
        the critic, when there is one, trains first on the same batch, and alone during its `critic_only_steps`.

        `batch` (from `prepare`) must hold `advantages` and `behaviour_logprobs`, `old_logprobs` when
        `needs_old_logprobs`, `ref_logprobs` when a KL term is on, and `values` and `returns` with a critic.
        A step whose loss or gradient is not finite is skipped and counted.
        """
        metrics: dict[str, float] = {}
        train_policy = self.critic is None or not self.critic.critic_only
        if self.critic is not None:
            metrics |= self.critic.update(batch, group_size)
            metrics["critic/critic_only"] = float(not train_policy)
        if train_policy:
            config = self.train_config
            sums: dict[str, float] = defaultdict(float)
            counts: dict[str, int] = defaultdict(int)
            for _epoch in range(config.ppo_epochs):
                for rows in group_slices(len(batch), group_size, config.mini_batches):
                    for name, value in self._optimizer_step(batch.select(rows)).items():
                        sums[name] += value
                        counts[name] += 1
            metrics |= {name: sums[name] / counts[name] for name in sums}
        metrics["train/lr"] = self.scheduler.get_last_lr()[0]
        return metrics

    def _optimizer_step(self, mini: Batch) -> dict[str, float]:
        """One optimizer step on `mini`: normalised by the whole mini-batch's counts, each rank's micro-batches
        accumulated locally and reduced across ranks once, at the last (`training.parallel`)."""
        norms = Normalisers.of(mini, self.algorithm, self.max_new_tokens)
        self.optimizer.zero_grad(set_to_none=True)
        totals: dict[str, float] = {}
        plan = self.parallel.micro_plan(mini, self.train_config.micro_batch_tokens)
        for index, rows in enumerate(plan):
            part = mini.select(rows) if rows is not None else padding_part(mini)
            with self.parallel.gradient_sync(self.trained, last=index == len(plan) - 1):
                logprobs, entropy = forward_responses(
                    self.trained, part, self.pad_id, with_entropy=True, entropy_grad=self.algorithm.entropy_coef > 0
                )
                assert entropy is not None
                terms, metrics = loss_terms(self.algorithm, part, logprobs, entropy, norms)
                loss = torch.stack(list(terms.values())).sum()
                (loss * (self.parallel.loss_scale if rows is not None else 0.0)).backward()
            if rows is not None:
                add_metrics(totals, {**{f"loss/{k}": v.item() for k, v in terms.items()}, **metrics})
        totals = self.parallel.combine_metrics(totals)
        loss_total = sum(v for k, v in totals.items() if k.startswith("loss/"))
        grad_norm, stepped = apply_gradients(
            self.optimizer, self.scheduler, self.trainable, self.train_config.grad_clip, loss_total
        )
        self.nonfinite_in_a_row = 0 if stepped else self.nonfinite_in_a_row + 1
        totals["train/grad_norm"] = grad_norm
        totals["train/skipped_nonfinite"] = float(not stepped)
        return totals

    # ---- weights and state ---------------------------------------------------------------------------
    def engine_weights(self) -> Iterator[tuple[str, torch.Tensor]]:
        """Full-model weights under Hugging Face names, LoRA merged in, for engines and checkpoints.

        With LoRA the merge is out of place (`lora.merged_weights`): peft's merge/unmerge round trip wrote to
        the frozen base, which is also the KL reference, and in bf16 did not restore it bitwise. Under FSDP2
        every rank must iterate (each tensor is all-gathered in turn) and only the leader receives tensors.
        """
        if self.lora:
            base = self.model.get_base_model()  # type: ignore[attr-defined]
            if self.parallel.sharded:
                yield from merged_from_gathered(base, self.parallel.full_tensors(base))
            else:
                yield from merged_weights(base)
            return
        yield from self.parallel.full_tensors(self.model)

    def save_model(self, folder: Path) -> None:
        """A Hugging Face folder loadable by transformers and vLLM; with LoRA, merged weights plus the
        adapter alone in `folder/adapter` (what resume loads back onto the base model). With several ranks
        every rank takes part (under FSDP2 the weights are gathered one tensor at a time) and the leader writes."""
        sharded = self.parallel.sharded
        if not sharded and not self.parallel.leader:
            return  # replicas: the leader's copy is the model
        if self.lora:
            merged = dict(self.engine_weights())
            # peft's own adapter export reads the layers' parameters, which are shards under FSDP2.
            # (only the adapter's tensors are gathered: the merged base weights came from `engine_weights`)
            adapter = dict(self.parallel.full_tensors(self.model, lambda name: "lora_" in name)) if sharded else None
            if self.parallel.leader:
                self.model.get_base_model().save_pretrained(folder, state_dict=merged)  # type: ignore[attr-defined]
                self.model.save_pretrained(folder / "adapter", state_dict=adapter)
        else:
            weights = dict(self.engine_weights()) if sharded else None
            if self.parallel.leader:
                self.model.save_pretrained(folder, state_dict=weights)
        if self.parallel.leader:
            self.tokenizer.save_pretrained(folder)

    def save(self, folder: Path, *, optimizer: bool = True) -> dict[str, Any]:
        """The learner's part of checkpoint `folder`: the Hugging Face model in `folder/model`; with several
        ranks, the policy's and critics' weights (and optimizer states) sharded into `folder/learner`
        (`torch.distributed.checkpoint`, each rank writing its own part). Returns the rest of its state, small
        and the same on every rank, for the trainer file. `optimizer` False (`checkpoint.save_optimizer`) leaves
        out the Adam moments, the bulk of a checkpoint: a resume then restarts them from zero, so it is no
        longer exact."""
        self.save_model(folder / "model")
        if self.parallel.world == 1:
            state = self.state_dict()
            if not optimizer:
                state.pop("optimizer")
                state.get("critic", {}).pop("optimizer", None)
            return state
        import torch.distributed.checkpoint as dcp

        dcp.save(self._sharded_state(optimizer), checkpoint_id=folder / SHARDS_DIR)
        rest: dict[str, Any] = {
            "scheduler": self.scheduler.state_dict(),
            "nonfinite_in_a_row": self.nonfinite_in_a_row,
            "with_optimizer": optimizer,
        }
        if self.critic is not None:
            rest["critic"] = {"scheduler": self.critic.scheduler.state_dict(), "steps_done": self.critic.steps_done}
        return rest

    def restore(self, folder: Path, state: dict[str, Any]) -> None:
        """Continue from checkpoint `folder` and the state `save` returned for it."""
        if self.parallel.world == 1:
            self.load_state_dict(state)
            return
        import torch.distributed.checkpoint as dcp
        from torch.distributed.checkpoint.state_dict import set_model_state_dict, set_optimizer_state_dict

        if (self.critic is not None) != ("critic" in state):
            raise ValueError(
                "the checkpoint's critic does not match this run's (algorithm.advantage); resume with the algorithm "
                "section of the original config"
            )
        with_optimizer = state["with_optimizer"]
        sharded = self._sharded_state(with_optimizer)
        dcp.load(sharded, checkpoint_id=folder / SHARDS_DIR)
        set_model_state_dict(self.model, sharded["model"])
        if with_optimizer:
            set_optimizer_state_dict(self.model, self.optimizer, sharded["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.nonfinite_in_a_row = state["nonfinite_in_a_row"]
        if self.critic is not None:
            critics = torch.nn.ModuleList(self.critic.models)
            set_model_state_dict(critics, sharded["critic_models"])
            if with_optimizer:
                set_optimizer_state_dict(critics, self.critic.optimizer, sharded["critic_optimizer"])
            self.critic.scheduler.load_state_dict(state["critic"]["scheduler"])
            self.critic.steps_done = state["critic"]["steps_done"]

    def _sharded_state(self, optimizer: bool) -> dict[str, Any]:
        """What `torch.distributed.checkpoint` saves and loads in place: each rank's part of the policy's and
        the critics' weights, and of their optimizer states with `optimizer` (whole tensors under DDP, which DCP
        writes once)."""
        from torch.distributed.checkpoint.state_dict import get_model_state_dict, get_optimizer_state_dict

        state = {"model": get_model_state_dict(self.model)}
        if optimizer:
            state["optimizer"] = get_optimizer_state_dict(self.model, self.optimizer)
        if self.critic is not None:
            # One container, so that the ensemble's parameter names stay distinct: "0.backbone...", "1....".
            critics = torch.nn.ModuleList(self.critic.models)
            state["critic_models"] = get_model_state_dict(critics)
            if optimizer:
                state["critic_optimizer"] = get_optimizer_state_dict(critics, self.critic.optimizer)
        return state

    def load_adapter(self, folder: Path) -> None:
        """Restore LoRA adapter weights saved by `save_model` (resume of a LoRA run)."""
        from peft import set_peft_model_state_dict
        from safetensors.torch import load_file

        set_peft_model_state_dict(self.model, load_file(folder / "adapter" / "adapter_model.safetensors"))

    def state_dict(self) -> dict[str, Any]:
        """Optimizer, scheduler and counters, plus the whole critic (weights included: it has no other home)."""
        state = {
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "nonfinite_in_a_row": self.nonfinite_in_a_row,
        }
        if self.critic is not None:
            state["critic"] = self.critic.state_dict()
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """`state_dict`'s state back; without an `optimizer` entry (`checkpoint.save_optimizer: false`) the Adam
        moments start from zero."""
        if "optimizer" in state:
            self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.nonfinite_in_a_row = state["nonfinite_in_a_row"]
        if self.critic is not None:
            if "critic" not in state:
                raise ValueError(
                    "this run has a critic (algorithm.advantage: gae) but the checkpoint holds none; resume with "
                    "the algorithm section of the original config"
                )
            self.critic.load_state_dict(state["critic"])
