"""A two-node Ray cluster on one machine (`ray.cluster_utils.Cluster`): the engine goes to the node that
offers the `rollout` resource, and when that node is removed it comes back on another one, serving the
newest weights. Run as a script by `test_two_nodes.py` (a cluster of its own, beside the tests' instance);
prints one JSON line."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import ray
import torch
from ray.cluster_utils import Cluster
from transformers import AutoModelForCausalLM, AutoTokenizer

from reasonrl.config import load_config
from reasonrl.distributed import EngineSite, backend_for
from reasonrl.engines.base import GenerationRequest, SamplingSettings
from reasonrl.engines.factory import LearnerWeights
from reasonrl.engines.hf import HFEngine


def main(model_dir: Path) -> None:
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
    first = cluster.add_node(num_cpus=1, resources={"rollout": 1})
    ray.init(address=cluster.address, log_to_driver=False)
    config = load_config(
        None,
        [
            "distributed.backend=ray",
            f"distributed.address={cluster.address}",
            "distributed.engine.cpus=0.5",
            "distributed.engine.resources={rollout: 1}",
            "distributed.reward.cpus=0",
        ],
    )
    model = AutoModelForCausalLM.from_pretrained(model_dir).eval()
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    learner = LearnerWeights(model, model, tokenizer, lambda: model.state_dict().items(), torch.device("cpu"))
    backend = backend_for(config)
    engines = backend.engine(EngineSite("hf", "auto", learner, "sync", Path("."), 0, "auto", 64))
    replica = engines.replicas[0]  # type: ignore[attr-defined]
    sampling = SamplingSettings(max_new_tokens=5)
    requests = [GenerationRequest(tokenizer(f"{i}+1=")["input_ids"], seed=i) for i in range(6)]
    placed_on = replica.node
    changed = {name: tensor * 1.01 for name, tensor in model.state_dict().items()}
    engines.update_weights(changed.items(), version=3)
    second = cluster.add_node(num_cpus=1, resources={"rollout": 1})
    cluster.remove_node(first)
    out = engines.generate(requests, sampling)  # the engine's node is gone: restarted on the other one
    model.load_state_dict(changed)
    local = HFEngine(model, tokenizer, seed=0).generate(requests, sampling)
    print(
        json.dumps(
            {
                "placed_on_rollout_node": placed_on == first.node_id,
                "moved_to_second_node": replica.node == second.node_id,
                "restarts": replica.restarts,
                "same_tokens": [g.response_ids for g in out] == [g.response_ids for g in local],
                "version": engines.version,
            }
        )
    )
    backend.close()
    ray.shutdown()
    cluster.shutdown()


if __name__ == "__main__":
    main(Path(sys.argv[1]))
