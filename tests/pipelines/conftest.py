"""A seconds-long training config on the tiny model, shared by the pipeline tests."""

from __future__ import annotations

QUICK = [
    "model.path=builtin:tiny",
    "data.train=sum?size=200",
    "data.format.template=plain",
    "rollout.group_size=4",
    "rollout.batch_size=16",
    "rollout.max_new_tokens=5",
    "algorithm.reward.workers=0",
    "train.steps=4",
    "train.lr=0.001",
    "train.num_threads=1",
    "train.sft.steps=5",
    "train.sft.batch_size=16",
    "eval.max_prompts=16",
    "logging.progress=false",
    "logging.rollout_dump_every=2",
]
