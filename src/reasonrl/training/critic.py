"""The critic of PPO: value models with their own optimizer, trained on the λ-returns of each batch.

One value model is plain PPO; `count` >= 2 is AsyPPO's ensemble of mini-critics, each trained on its own
share of every group's responses (`algorithms.asyppo`), whose mean is the value and whose disagreement
masks advantages and the entropy bonus. It follows the policy's batch discipline (`ppo_epochs` passes,
`mini_batches` of whole groups, length-bucketed micro-batches whose losses are normalised by the
mini-batch's token count, so accumulation is exact) and its learning-rate schedule, with its own peak rate.
During its first `critic_only_steps` RL steps the learner trains it alone.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

import torch
from transformers import PreTrainedTokenizerBase

from reasonrl.algorithms import (
    aggregate_loss,
    critic_shards,
    disagreement_masks,
    ensemble_values,
    explained_variance,
    value_loss,
)
from reasonrl.algorithms.masking import masked_mean
from reasonrl.config.schema import CriticConfig, ModelConfig, TrainConfig
from reasonrl.training.batch import Batch, group_slices
from reasonrl.training.models import load_tokenizer
from reasonrl.training.parallel import SINGLE, DataParallel, padding_part
from reasonrl.training.schedules import lr_lambda
from reasonrl.training.stepping import add_metrics, apply_gradients
from reasonrl.training.value_model import forward_values, load_value_model, score_values


class Critic:
    def __init__(
        self,
        folder: Path,
        model_config: ModelConfig,
        train: TrainConfig,
        config: CriticConfig,
        device: torch.device,
        *,
        policy_tokenizer: PreTrainedTokenizerBase,
        parallel: DataParallel = SINGLE,
    ) -> None:
        if load_tokenizer(folder).get_vocab() != policy_tokenizer.get_vocab():
            raise ValueError(
                f"the critic model {folder} (algorithm.critic.model) has another tokenizer than the policy; the "
                "critic reads the policy's token ids, so it must share its vocabulary (e.g. a smaller model of "
                "the same family), or use algorithm.critic.model: policy"
            )
        self.config = config
        self.train_config = train
        self.pad_id = int(policy_tokenizer.pad_token_id)
        self.parallel = parallel
        self.models = [load_value_model(folder, model_config, device) for _ in range(config.count)]
        # What each critic's forward runs through: itself, its DDP wrapper, or itself sharded in place (FSDP2).
        self.trained = [parallel.wrap(model, trainable=True) for model in self.models]
        # One optimizer over the ensemble: AdamW is per parameter and each critic's loss touches only its own
        # weights, so this equals K optimizers, except that grad_clip bounds the ensemble's joint norm.
        self.parameters = [p for model in self.models for p in model.parameters() if p.requires_grad]
        self.optimizer = torch.optim.AdamW(
            self.parameters, lr=config.lr, betas=train.adam_betas, weight_decay=train.weight_decay
        )
        total = max(1, train.steps * train.ppo_epochs * train.mini_batches)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lr_lambda(train.lr_schedule, train.lr_warmup_steps, total)
        )
        self.steps_done = 0

    @property
    def critic_only(self) -> bool:
        """True during the first `critic_only_steps` RL steps, when only the critic trains."""
        return self.steps_done < self.config.critic_only_steps

    def evaluate(self, batch: Batch, group_size: int) -> dict[str, torch.Tensor]:
        """The batch tensors the critic contributes, computed without gradients before the update, keyed by
        their `Batch` field names (`batch.fill(**critic.evaluate(batch, group_size))`).

        `values` [B, T]: the ensemble's mean value (what GAE uses); `critic_shard` [B]: which critic trains
        on each response; `shard_values` [B, T]: that critic's own value (its value-clip anchor). With an
        ensemble also `value_std` (disagreement across critics), `advantage_keep` and `entropy_weights`
        (AsyPPO's masks I^A and I^H, 0/1 per token).
        """
        budget = self.train_config.micro_batch_tokens
        each = torch.stack([score_values(model, batch, self.pad_id, budget, self.parallel) for model in self.models])
        mask = batch.response_mask
        shards = critic_shards(len(batch), group_size, len(self.models))
        tensors = {
            "critic_shard": shards,
            "shard_values": each[shards, torch.arange(len(batch))],
        }
        tensors["values"], spread = ensemble_values(each, mask)
        if len(self.models) > 1:
            tensors["value_std"] = spread
            tensors["advantage_keep"], tensors["entropy_weights"] = disagreement_masks(
                spread, mask, advantage_low=self.config.advantage_mask_low, entropy_high=self.config.entropy_mask_high
            )
        return tensors

    def update(self, batch: Batch, group_size: int) -> dict[str, float]:
        """Fit each critic's values on its shard to `batch.returns`, clipping around its own values
        before the update (`shard_values`, from `evaluate`). Metrics are prefixed `critic/`; the explained
        variance is that of the ensemble values the advantages were computed with."""
        mask = batch.response_mask.bool()
        values, returns = batch.values, batch.returns
        assert values is not None and returns is not None, "Learner.prepare sets values and returns with a critic"
        summary = {
            "critic/explained_variance": float(explained_variance(values, returns, mask)),
            "critic/values_mean": float(masked_mean(values, mask)),
            "critic/returns_mean": float(masked_mean(returns, mask)),
        }
        if batch.value_std is not None:
            assert batch.advantage_keep is not None and batch.entropy_weights is not None
            summary["critic/value_std_mean"] = float(masked_mean(batch.value_std, mask))
            summary["critic/advantage_masked_frac"] = 1 - float(masked_mean(batch.advantage_keep, mask))
            summary["critic/entropy_masked_frac"] = 1 - float(masked_mean(batch.entropy_weights, mask))
        sums: dict[str, float] = defaultdict(float)
        steps = 0
        for _epoch in range(self.train_config.ppo_epochs):
            for rows in group_slices(len(batch), group_size, self.train_config.mini_batches):
                for name, value in self._optimizer_step(batch.select(rows)).items():
                    sums[name] += value
                steps += 1
        self.steps_done += 1
        metrics = {name: total / max(1, steps) for name, total in sums.items()}
        return {**summary, **metrics, "critic/lr": self.scheduler.get_last_lr()[0]}

    def _optimizer_step(self, mini: Batch) -> dict[str, float]:
        tokens = mini.response_mask.sum().clamp_min(1)
        self.optimizer.zero_grad(set_to_none=True)
        totals: dict[str, float] = {}
        shards = mini.critic_shard
        assert shards is not None, "Critic.evaluate sets critic_shard"
        for index, model in enumerate(self.trained):
            own = mini.select((shards == index).nonzero().reshape(-1).tolist())
            if not len(own):
                continue
            plan = self.parallel.micro_plan(own, self.train_config.micro_batch_tokens)
            for step, rows in enumerate(plan):
                part = own.select(rows) if rows is not None else padding_part(own)
                assert part.shard_values is not None and part.returns is not None
                device = next(model.parameters()).device
                mask = part.response_mask.to(device)
                with self.parallel.gradient_sync(model, last=step == len(plan) - 1):
                    per_token, metrics = value_loss(
                        forward_values(model, part, self.pad_id),  # type: ignore[arg-type]
                        part.shard_values.to(device),
                        part.returns.to(device),
                        mask,
                        clip=self.config.value_clip,
                    )
                    # Every critic's tokens over the whole mini-batch's count: Σ_m Σ_{t ∈ shard m} ℓ_t / N.
                    loss = aggregate_loss(per_token, mask, "token-mean", denominator=tokens.to(device))
                    (loss * (self.parallel.loss_scale if rows is not None else 0.0)).backward()
                if rows is None:
                    continue
                share = float(mask.sum().cpu() / tokens)
                add_metrics(
                    totals,
                    {"critic/value_loss": loss.item(), **{f"critic/{k}": float(v) * share for k, v in metrics.items()}},
                )
        totals = self.parallel.combine_metrics(totals)
        norm, stepped = apply_gradients(
            self.optimizer, self.scheduler, self.parameters, self.train_config.grad_clip, totals["critic/value_loss"]
        )
        return {**totals, "critic/grad_norm": norm, "critic/skipped_nonfinite": float(not stepped)}

    def state_dict(self) -> dict[str, Any]:
        return {
            "models": [model.state_dict() for model in self.models],
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "steps_done": self.steps_done,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if len(state["models"]) != len(self.models):
            raise ValueError(
                f"the checkpoint holds {len(state['models'])} critics but algorithm.critic.count is "
                f"{len(self.models)}; resume with the original count"
            )
        for model, weights in zip(self.models, state["models"], strict=True):
            model.load_state_dict(weights)
        if "optimizer" in state:  # absent with checkpoint.save_optimizer: false
            self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.steps_done = state["steps_done"]
