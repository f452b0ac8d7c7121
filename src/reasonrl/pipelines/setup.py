"""Everything a training run is made of, built from the config (or restored from a checkpoint).

The sync loop in `pipelines/sync.py` only calls into these parts; building them, including supervised
fine-tuning (train.sft) and resume, happens here so the loop reads top to bottom in one screen.
"""

from __future__ import annotations

import random
import shutil
import tempfile
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from reasonrl.config import RunConfig, dump_config
from reasonrl.config.schema import SftConfig
from reasonrl.data import Prompt, PromptSampler, heldout_prompts, load_source
from reasonrl.distributed import Backend, EngineSite, LearnerSite, LocalBackend, backend_for
from reasonrl.engines.base import Engine, SamplingSettings
from reasonrl.engines.factory import LearnerWeights
from reasonrl.models.resolve import resolve_model_path
from reasonrl.rewards import RewardPool
from reasonrl.rewards.cat_labels import SynthesisLabelPool
from reasonrl.rewards.code import record_sandbox
from reasonrl.rewards.failures import RewardFailureWatch
from reasonrl.rewards.majority_labels import MajorityLabelPool, training_reward_pool, verifier_pool
from reasonrl.rollout.collect import PromptEncoder
from reasonrl.rollout.demonstrations import demonstrations
from reasonrl.rollout.episodes import EpisodeDriver, episode_driver
from reasonrl.tracking import RunDirectory, Tracker
from reasonrl.training.checkpoint import latest_checkpoint, load_checkpoint, restore_rng_states
from reasonrl.training.learner import Learner
from reasonrl.training.models import configure_threads, load_policy, load_tokenizer, pick_device
from reasonrl.training.sft import supervised_finetune


@dataclass
class Run:
    """The parts of one run and the counters that resume must restore."""

    config: RunConfig
    directory: RunDirectory
    tracker: Tracker
    learner: Learner
    engine: Engine
    encode: PromptEncoder
    sampler: PromptSampler
    eval_prompts: list[Prompt]
    train_pool: RewardPool | MajorityLabelPool | SynthesisLabelPool
    eval_pool: RewardPool | None  # only when the training reward differs from the task's verifier
    sampling: SamplingSettings
    eval_sampling: SamplingSettings
    step: int = 0
    version: int = 0
    history: dict[str, Any] = field(default_factory=dict)  # accuracy before RL, sft metrics, ...
    # Stops the run when the reward fails on every sample of several steps (algorithm.reward.max_failed_steps).
    reward_failures: RewardFailureWatch = field(default_factory=RewardFailureWatch)
    # CaT's anchor (`labels: cat`): the frozen initial policy's engine; its RNG is checkpointed with the run's.
    anchor: Engine | None = None
    # Multi-turn episodes (`rollout.environment`): their environments, template deltas and limits.
    episodes: EpisodeDriver | None = None
    # Where engines and reward pools run (`distributed.backend`); closed last.
    backend: Backend = field(default_factory=LocalBackend)

    def close(self) -> None:
        try:
            self.engine.close()
            self.train_pool.close()
            if self.eval_pool is not None:
                self.eval_pool.close()
            self.tracker.close()
        finally:
            self.backend.close()


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def sft_targets(prompts: list[Prompt], tokenizer: Any) -> list[list[int]]:
    """The supervised target of each prompt, then the end-of-turn token: its answer, or `meta["target"]` where
    the answer is not a response (a code task's answer is the tests that the response must pass)."""
    eos = tokenizer.eos_token_id
    texts = [str(p.meta.get("target", p.answer)) for p in prompts]
    return [tokenizer(text, add_special_tokens=False)["input_ids"] + [eos] for text in texts]


def sft_examples(
    config: RunConfig, prompts: list[Prompt], tokenizer: Any
) -> tuple[list[list[int]], list[list[int]], list[list[int]] | None]:
    """Prompt ids, target ids and target masks of the supervised warm-up: (prompt, answer) pairs, or with an
    environment its demonstration episodes (tool results masked out)."""
    driver = episode_driver(config, tokenizer)
    if driver is None:
        encode = PromptEncoder(tokenizer, config.data.format)
        return [encode(p) for p in prompts], sft_targets(prompts, tokenizer), None
    episodes = demonstrations(driver, prompts)
    if not episodes:
        raise ValueError(
            f"train.sft with rollout.environment {config.rollout.environment.name!r}: the environment gave no "
            "demonstration (a demonstration(task) method returning the assistant turns); set train.sft.steps: 0"
        )
    return [e.prompt_ids for e in episodes], [e.response_ids for e in episodes], [e.mask for e in episodes]


def start_model(config: RunConfig, base: Path, directory: RunDirectory, prompts: list[Prompt], log: Any) -> Path:
    """The folder RL starts from: `base`, or `base` after supervised fine-tuning (`train.sft`, built once per
    run into RUN_DIR/sft_model)."""
    sft: SftConfig = config.train.sft
    if sft.steps == 0:
        return base
    target = directory.root / "sft_model"
    if (target / "config.json").is_file():
        return target
    device = pick_device(config.backend.device)
    tokenizer = load_tokenizer(base)
    model = load_policy(
        base,
        config.model.model_copy(update={"lora": config.model.lora.model_copy(update={"enabled": False})}),
        device,
    )
    prompt_ids, target_ids, target_masks = sft_examples(config, prompts, tokenizer)
    supervised_finetune(
        model,
        prompt_ids,
        target_ids,
        sft,
        pad_id=int(tokenizer.pad_token_id),
        token_budget=config.train.micro_batch_tokens,
        seed=config.train.seed,
        grad_clip=config.train.grad_clip,
        on_step=lambda step, metrics: log(step, metrics),
        target_masks=target_masks,
    )
    staging = Path(tempfile.mkdtemp(prefix=".sft-", dir=directory.root))
    model.save_pretrained(staging)
    tokenizer.save_pretrained(staging)
    if target.exists():
        shutil.rmtree(target)
    staging.rename(target)
    return target


def build_run(config: RunConfig, *, resume: bool = False, sft_log: Any = None, engine: str | None = None) -> Run:
    """Build every part of a run; with `resume`, restore the newest checkpoint of `config.logging.run_dir`.
    `engine` overrides `rollout.engine` and `rollout.placement` with that engine colocated (the async pipeline
    generates elsewhere and keeps the free colocated hf engine here, for held-out evaluation)."""
    seed_everything(config.train.seed)
    configure_threads(config.train.num_threads)
    directory = RunDirectory.create(config.logging.run_dir, config_text=dump_config(config), resume=resume)
    tracker = Tracker.from_config(config.logging, directory)
    train_prompts, _report = load_source(config.data.train, config_key="data.train")
    eval_prompts = (
        load_source(config.data.eval, config_key="data.eval")[0][: config.eval.max_prompts]
        if config.data.eval is not None
        else heldout_prompts(config.data.train, size=config.eval.max_prompts, train_prompts=train_prompts)
    )
    terms = [(term.name, term.options) for term in config.algorithm.reward.functions]
    record_sandbox(terms, [*train_prompts, *eval_prompts], directory.root)
    base = resolve_model_path(config.model.path)
    start = start_model(config, base, directory, train_prompts, sft_log or (lambda step, m: None))

    checkpoint = latest_checkpoint(directory.checkpoints_dir) if resume else None
    lora = config.model.lora.enabled
    policy_folder = checkpoint / "model" if checkpoint is not None and not lora else start
    backend = backend_for(config)
    try:
        learner = backend.learner(
            LearnerSite(
                policy_folder,
                config.model,
                config.train,
                config.algorithm,
                config.backend.device,
                max_new_tokens=config.rollout.max_new_tokens,
                reference_folder=start,
                critic_folder=None
                if config.algorithm.critic.model == "policy"
                else resolve_model_path(config.algorithm.critic.model),
                adapter_folder=checkpoint / "model" if checkpoint is not None and lora else None,
            )
        )
        run = assemble_run(
            config, backend, learner, directory, tracker, (policy_folder, start), (train_prompts, eval_prompts), engine
        )
    except BaseException:
        backend.close()
        raise
    if checkpoint is not None:
        restore(run, checkpoint)
    return run


def assemble_run(
    config: RunConfig,
    backend: Backend,
    learner: Learner,
    directory: RunDirectory,
    tracker: Tracker,
    folders: tuple[Path, Path],
    prompts: tuple[list[Prompt], list[Prompt]],
    engine: str | None,
) -> Run:
    """The run's engine and reward pools, built through `backend` (local or Ray), around a built learner.
    `folders`: (the policy's folder, the folder RL started from); `prompts`: (training, held-out)."""
    policy_folder, start = folders
    train_prompts, eval_prompts = prompts
    rollout = config.rollout
    site = engine_site(config, learner, directory.root, policy_folder)
    if engine is None:
        rollout_engine = backend.engine(site)
    elif isinstance(learner, Learner):  # the async pipeline's held-out engine: colocated here, whatever the backend
        rollout_engine = LocalBackend().engine(replace(site, requested=engine, placement="colocated", options={}))
    else:  # learner ranks hold the weights, not this process: the held-out engine is one more of the backend's
        rollout_engine = backend.engine(replace(site, requested=engine, options={}))
    reward = config.algorithm.reward
    anchor = anchor_engine(config, learner, start) if reward.labels == "cat" else None
    episodes = episode_driver(config, learner.tokenizer)
    stop = tuple(rollout.stop) + (episodes.stop_strings if episodes is not None else ())
    stop_ids = episodes.stop_token_ids if episodes is not None else ()
    return Run(
        config=config,
        directory=directory,
        tracker=tracker,
        learner=learner,
        engine=rollout_engine,
        encode=PromptEncoder(learner.tokenizer, config.data.format),
        sampler=PromptSampler(train_prompts, shuffle=config.data.shuffle, seed=config.data.seed),
        eval_prompts=eval_prompts,
        train_pool=training_reward_pool(
            reward,
            synthesize=anchor_synthesizer(config, learner, anchor) if anchor is not None else None,
            new_pool=backend.reward_pool,
        ),
        anchor=anchor,
        reward_failures=RewardFailureWatch.from_config(reward),
        eval_pool=verifier_pool(reward, new_pool=backend.reward_pool),
        sampling=SamplingSettings(
            max_new_tokens=rollout.max_new_tokens,
            temperature=rollout.temperature,
            top_p=rollout.top_p,
            top_k=rollout.top_k,
            stop=stop,
            stop_token_ids=stop_ids,
        ),
        eval_sampling=SamplingSettings(
            max_new_tokens=config.eval.max_new_tokens or rollout.max_new_tokens,
            temperature=config.eval.temperature,
            top_p=rollout.top_p if config.eval.temperature > 0 else 1.0,
            stop=stop,
            stop_token_ids=stop_ids,
        ),
        episodes=episodes,
        backend=backend,
    )


def anchor_engine(config: RunConfig, learner: Learner, start: Path) -> Engine:
    """CaT's anchor (`algorithm.reward.labels: cat`): an hf engine on the frozen initial policy, built once per
    run. It is the learner's KL reference when it holds one, else a frozen copy of the starting weights
    (`start`: the model RL starts from, after SFT; with LoRA, the base)."""
    from reasonrl.engines.hf import HFEngine
    from reasonrl.training.models import load_reference

    anchor = learner.reference if learner.reference is not None else load_reference(start, config.model, learner.device)
    return HFEngine(anchor, learner.tokenizer, seed=config.train.seed + 1)


def anchor_synthesizer(config: RunConfig, learner: Learner, anchor: Engine) -> Any:
    """The synthesis of a group's reference answer on the anchor engine (`algorithm.reward.synthesis`)."""
    from reasonrl.rollout.synthesis import Synthesizer

    synthesis = config.algorithm.reward.synthesis
    return Synthesizer(
        anchor,
        learner.tokenizer,
        max_candidates=synthesis.candidates,
        max_new_tokens=synthesis.max_new_tokens or config.rollout.max_new_tokens,
        temperature=synthesis.temperature,
        top_p=config.rollout.top_p,
        stop=tuple(config.rollout.stop),
    )


def engine_site(
    config: RunConfig, learner: Learner, work_dir: Path, model_dir: Path | None = None, *, version: int = 0
) -> EngineSite:
    """The rollout engine the config asks for, on the learner's current weights (`model_dir`: a folder of the
    starting weights, what a colocated vLLM loads), for `Backend.engine`."""
    return EngineSite(
        requested=config.rollout.engine,
        placement=config.rollout.placement,
        learner=learner_weights(learner, model_dir),
        pipeline=config.pipeline,
        work_dir=work_dir,
        seed=config.train.seed,
        dtype=config.model.dtype,
        max_model_len=max_model_len(learner),
        options=config.rollout.engine_options,
        version=version,
    )


def learner_weights(learner: Learner, model_dir: Path | None = None) -> LearnerWeights:
    """The learner's side of an engine (`engines.factory.build_placed_engine`): its module, its full weights
    with LoRA merged in, and `model_dir`, a folder of its starting weights (what a colocated vLLM loads)."""
    base = learner.model.get_base_model() if learner.lora else learner.model  # type: ignore[attr-defined]
    return LearnerWeights(learner.model, base, learner.tokenizer, learner.engine_weights, learner.device, model_dir)


def max_model_len(learner: Learner) -> int:
    """The context length a vLLM engine reserves for: the model's, capped at 4096."""
    limit = getattr(learner.model.config, "max_position_embeddings", 4096)
    return int(min(limit, 4096))


def restore(run: Run, checkpoint: Path) -> None:
    """Put every counter, RNG and cursor back to where checkpoint `checkpoint` left them."""
    trainer, pipeline = load_checkpoint(checkpoint)
    run.learner.restore(checkpoint, trainer["learner"])
    run.engine.set_rng_state(trainer["engine_rng"])
    if run.anchor is not None and "anchor_rng" in trainer:
        run.anchor.set_rng_state(trainer["anchor_rng"])
    restore_rng_states(trainer["rng"])
    run.sampler.load_state_dict(pipeline["sampler"])
    run.step = pipeline["step"]
    run.version = pipeline["version"]
    run.engine.version = run.version
    run.history = pipeline["history"]
    run.tracker.truncate_after(run.step)
