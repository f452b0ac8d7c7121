"""Tree rollouts (TreePO, Li et al., arXiv 2508.17445): a group's responses grown segment by segment as a tree,
so the segments they share are generated once.

Each round is one engine call over every live branch of every group, for at most `segment_tokens` new tokens
(the branch's prompt and path so far are the request's prefix; vLLM's prefix cache keeps their keys, the hf
engine prefills them in one batched pass). After a round:

- a branch that ended (stop, or the response budget) becomes a leaf;
- the group's width budget (group size minus its leaves) goes to its live branches: each continues, and those
  with room fork into up to `branching` children (split evenly, so the budget of finished branches passes to
  the live ones, TreePO's `by_final_trajectory` mode);
- a group with no live branch but budget left falls back (TreePO's `fallback_policy=random`): a random leaf
  that spans more than one segment is cut back to a random earlier segment boundary and regrown from there, or,
  when no leaf is that long, a fresh root is started.

Every group ends with exactly `group_size` leaves, ordinary responses with one more field, their path ("0/1/0":
a branch index per segment; fallbacks get indices "f<k>" beside their cut point's children), which the `tree`
advantage groups by. Forks are random draws of the same policy at a shared prefix, so every leaf is a sample
of the current policy: losses and corrections apply unchanged.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

from reasonrl.config.schema import RunConfig
from reasonrl.engines.base import Engine, FinishReason, GenerationRequest, SamplingSettings


@dataclass
class Branch:
    """A path of the tree: its tokens since the prompt, their log-probs, and its path id."""

    path: list[str]
    response_ids: list[int] = field(default_factory=list)
    logprobs: list[float] = field(default_factory=list)
    finish_reason: FinishReason | None = None

    def child(self, name: str) -> Branch:
        return Branch([*self.path, name], list(self.response_ids), list(self.logprobs))

    @property
    def path_id(self) -> str:
        return "/".join(self.path)


@dataclass
class TreeGroup:
    """One prompt's tree while it grows."""

    prompt_ids: list[int]
    size: int
    live: list[Branch] = field(default_factory=list)
    leaves: list[Branch] = field(default_factory=list)
    fallbacks: int = 0
    roots: int = 0

    def new_root(self) -> Branch:
        self.roots += 1
        return Branch([str(self.roots - 1)])


@dataclass
class TreeCounters:
    rounds: int = 0
    generated_tokens: int = 0
    leaf_tokens: int = 0
    fallbacks: int = 0
    depth: int = 0
    leaves: int = 0


class TreeRollouts:
    """Grows the trees of groups of `group_size` leaves with an engine; random choices (fallback cut points)
    come from a generator seeded by the run and saved in checkpoints."""

    def __init__(self, *, segment_tokens: int, branching: int, fallback: bool, seed: int) -> None:
        self.segment_tokens = segment_tokens
        self.branching = branching
        self.fallback = fallback
        self.random = random.Random(seed)
        self.counters = TreeCounters()

    @classmethod
    def of(cls, config: RunConfig) -> TreeRollouts | None:
        tree = config.rollout.tree
        if not tree.enabled:
            return None
        return cls(
            segment_tokens=tree.segment_tokens, branching=tree.branching, fallback=tree.fallback, seed=config.train.seed
        )

    def grow(
        self, prompts: list[list[int]], group_size: int, engine: Engine, sampling: SamplingSettings
    ) -> list[list[Branch]]:
        """The `group_size` leaves of each prompt's tree, in path order; the engine's generate calls are one per
        round. Returns the leaves per prompt."""
        groups = [TreeGroup(ids, group_size) for ids in prompts]
        for group in groups:
            group.live = [group.new_root() for _ in range(min(group_size, self.branching))]
        while any(group.live for group in groups):
            branches = [(group, branch) for group in groups for branch in group.live]
            requests = [
                GenerationRequest(
                    group.prompt_ids,
                    list(branch.response_ids),
                    max_new_tokens=min(self.segment_tokens, sampling.max_new_tokens - len(branch.response_ids)),
                )
                for group, branch in branches
            ]
            generations = engine.generate(requests, sampling)
            self.counters.rounds += 1
            for (_, branch), generation in zip(branches, generations, strict=True):
                branch.response_ids += generation.response_ids
                branch.logprobs += generation.logprobs
                self.counters.generated_tokens += len(generation.response_ids)
                if generation.finish_reason == "stop":
                    branch.finish_reason = "stop"
                elif len(branch.response_ids) >= sampling.max_new_tokens or not generation.response_ids:
                    branch.finish_reason = "length"
            for group in groups:
                self._next_round(group)
        leaves = []
        for group in groups:
            ordered = sorted(group.leaves, key=lambda b: b.path)
            self.counters.fallbacks += group.fallbacks
            self.counters.leaves += len(ordered)
            self.counters.leaf_tokens += sum(len(b.response_ids) for b in ordered)
            self.counters.depth += sum(len(b.path) for b in ordered)
            leaves.append(ordered)
        return leaves

    def _next_round(self, group: TreeGroup) -> None:
        group.leaves += [b for b in group.live if b.finish_reason is not None]
        alive = [b for b in group.live if b.finish_reason is None]
        budget = group.size - len(group.leaves)
        if alive:
            group.live = self._fork(alive, budget)
        elif budget > 0:
            group.live = self._fall_back(group, budget)
        else:
            group.live = []

    def _fork(self, alive: list[Branch], budget: int) -> list[Branch]:
        """Each live branch continues; the width left over is split evenly among them, at most `branching`
        children each (earlier branches first when it does not divide)."""
        extra = min(budget - len(alive), (self.branching - 1) * len(alive))
        children = []
        for index, branch in enumerate(alive):
            count = 1 + extra // len(alive) + (1 if index < extra % len(alive) else 0)
            children += [branch.child(str(k)) for k in range(count)]
        return children

    def _fall_back(self, group: TreeGroup, budget: int) -> list[Branch]:
        """Regrow from a random earlier segment boundary of a random leaf that has one (else from a new root)."""
        width = min(budget, self.branching)
        long_enough = [b for b in group.leaves if len(b.response_ids) > self.segment_tokens] if self.fallback else []
        if not long_enough:
            return [group.new_root() for _ in range(width)]
        group.fallbacks += 1
        leaf = self.random.choice(long_enough)
        kept = self.random.randrange(1, (len(leaf.response_ids) - 1) // self.segment_tokens + 1)
        cut = Branch(
            leaf.path[:kept],
            leaf.response_ids[: kept * self.segment_tokens],
            leaf.logprobs[: kept * self.segment_tokens],
        )
        return [cut.child(f"f{group.fallbacks}.{k}") for k in range(width)]

    def metrics(self) -> dict[str, float]:
        """This batch's trees: `tree/token_saving` is the share of the leaves' tokens that were not generated
        (shared prefixes), against sampling every leaf on its own."""
        c, self.counters = self.counters, TreeCounters()
        return {
            "tree/rounds": float(c.rounds),
            "tree/generated_tokens": float(c.generated_tokens),
            "tree/leaf_tokens": float(c.leaf_tokens),
            "tree/token_saving": 1 - c.generated_tokens / max(1, c.leaf_tokens),
            "tree/fallbacks": float(c.fallbacks),
            "tree/mean_depth": c.depth / max(1, c.leaves),
        }

    def state_dict(self) -> dict[str, Any]:
        version, internal, gauss = self.random.getstate()
        return {"random": [version, list(internal), gauss]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        version, internal, gauss = state["random"]
        self.random.setstate((version, tuple(internal), gauss))
