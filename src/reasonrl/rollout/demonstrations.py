"""Demonstration episodes for a supervised warm-up (`train.sft` with `rollout.environment`).

An environment that can solve its tasks (`demonstration(task)`: the assistant turns) is replayed through the
same machinery as a rollout: each turn's tokens as if sampled (mask 1), the environment's real reactions as
template deltas (mask 0), the same limits. Supervised fine-tuning then learns the turns and never the tool
results, exactly as RL will treat them.
"""

from __future__ import annotations

from reasonrl.data import Prompt
from reasonrl.engines.base import Generation
from reasonrl.rollout.episodes import EpisodeDriver
from reasonrl.rollout.responses import Rollout


def demonstration_episode(driver: EpisodeDriver, task: Prompt, seed: int) -> Rollout | None:
    """`task` solved by its environment's demonstration, as a finished episode; None when the environment
    has no demonstration for it. The last turn ends with the EOS; a turn that calls a tool ends where
    generation stops for it (`</tool_call>`)."""
    prompt_ids, episode = driver.start(task, seed)
    demonstrate = getattr(episode.environment, "demonstration", None)
    turns = demonstrate(task) if callable(demonstrate) else None
    if not turns:
        return None
    member = Rollout(prompt_ids=prompt_ids, episode=episode)
    eos = driver.deltas.eos_id
    for position, text in enumerate(turns):
        ids = driver.deltas.encode(text)
        if position == len(turns) - 1 and eos is not None:
            ids.append(eos)
        member.extend(Generation(ids, [0.0] * len(ids), "stop"), version=0)
        driver.end_turn(member, version=0)
        if episode.stop_reason is not None:
            break
    return member


def demonstrations(driver: EpisodeDriver, tasks: list[Prompt]) -> list[Rollout]:
    """The demonstration episodes of `tasks` (those the environment can demonstrate), seeded by position."""
    found = (demonstration_episode(driver, task, seed) for seed, task in enumerate(tasks))
    return [episode for episode in found if episode is not None]
