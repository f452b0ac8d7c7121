"""Per-step statistics of a batch of scored samples (what the progress display and metrics.jsonl show)."""

from __future__ import annotations

import statistics
from collections.abc import Sequence

from reasonrl.rollout.samples import Sample


def rollout_metrics(samples: Sequence[Sample], group_size: int) -> dict[str, float]:
    """Statistics of whole groups of `group_size` adjacent samples. Excluded samples (no verdict) never reach
    here: the scheduler sets their groups aside before counting them as scored."""
    rewards = [s.reward for s in samples]
    lengths = [s.sampled_tokens for s in samples]  # an episode's environment tokens are not the policy's
    groups = [rewards[i : i + group_size] for i in range(0, len(rewards), group_size)]
    count = max(1, len(samples))
    return (
        episode_metrics(samples)
        | _majority_label_metrics(samples)
        | _cat_label_metrics(samples)
        | {
            "reward/mean": statistics.fmean(rewards) if rewards else 0.0,
            "reward/std": statistics.pstdev(rewards) if len(rewards) > 1 else 0.0,
            "rollout/reward_error_share": sum(bool(s.reward_info.get("error")) for s in samples) / count,
            "accuracy/train": sum(s.correct for s in samples) / count,
            "response_length/mean": statistics.fmean(lengths) if lengths else 0.0,
            "response_length/max": float(max(lengths, default=0)),
            "rollout/truncated_share": sum(s.finish_reason == "length" for s in samples) / count,
            # Groups where every response got the same reward carry no GRPO signal (DAPO filters them).
            "rollout/identical_reward_groups": sum(len(set(g)) == 1 for g in groups) / max(1, len(groups)),
        }
    )


def _majority_label_metrics(samples: Sequence[Sample]) -> dict[str, float]:
    """TTRL's diagnostics when the reward used majority pseudo-labels: their vote share and, where the
    prompts have reference answers, how often the pseudo-label was right."""
    shares = [s.reward_info["majority_share"] for s in samples if "majority_share" in s.reward_info]
    checked = [s.reward_info["label_correct"] for s in samples if "label_correct" in s.reward_info]
    metrics = {"ttrl/majority_share": statistics.fmean(shares)} if shares else {}
    if checked:
        metrics["ttrl/label_accuracy"] = statistics.fmean(map(float, checked))
    return metrics


def _cat_label_metrics(samples: Sequence[Sample]) -> dict[str, float]:
    """CaT's diagnostics when the reward used synthesized labels: how often the synthesized label and, on the
    same groups, the majority label (TTRL's) equal the reference answer; how often the two agree; and the
    anchor's tokens per synthesis. Averaged over samples, i.e. over groups weighted by their size."""
    infos = [s.reward_info for s in samples if "cat_tokens" in s.reward_info]
    if not infos:
        return {}
    metrics = {
        "cat/labelled_share": statistics.fmean(info["cat_label"] is not None for info in infos),
        "cat/agrees_with_majority": statistics.fmean(map(float, (i["cat_agrees_with_majority"] for i in infos))),
        "cat/synthesis_tokens": statistics.fmean(info["cat_tokens"] for info in infos),
    }
    checked = [info for info in infos if "cat_label_correct" in info]
    if checked:
        metrics["cat/label_accuracy"] = statistics.fmean(float(i["cat_label_correct"]) for i in checked)
        metrics["cat/ttrl_label_accuracy"] = statistics.fmean(float(i["cat_majority_correct"]) for i in checked)
    return metrics


def episode_metrics(samples: Sequence[Sample]) -> dict[str, float]:
    """Multi-turn episodes: turns, tool calls and errors per episode, tokens by mask, and the share of each stop
    reason (answer, max_turns, length, error); nothing for single-turn samples."""
    episodes = [(s, s.episode) for s in samples if s.episode is not None]
    if not episodes:
        return {}
    count = len(episodes)
    calls = sum(e["tool_calls"] for _, e in episodes)
    metrics = {
        "episode/turns_mean": sum(e["turns"] for _, e in episodes) / count,
        "episode/tool_calls_mean": calls / count,
        "episode/tool_errors_mean": sum(e["tool_errors"] for _, e in episodes) / count,
        "episode/tool_error_share": sum(e["tool_errors"] for _, e in episodes) / max(1, calls),
        "episode/environment_reward_mean": sum(e["reward"] for _, e in episodes) / count,
        "episode/sampled_tokens_mean": sum(s.sampled_tokens for s, _ in episodes) / count,
        "episode/environment_tokens_mean": sum(len(s.response_ids) - s.sampled_tokens for s, _ in episodes) / count,
    }
    for reason in ("answer", "max_turns", "length", "error"):
        metrics[f"episode/stop_{reason}_share"] = sum(e["stop_reason"] == reason for _, e in episodes) / count
    return metrics
