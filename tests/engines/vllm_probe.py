"""Run the vLLM engine in a child process (vLLM configures process-wide state) and print what it sampled.

Usage: python vllm_probe.py MODEL_DIR UPDATED_DIR PROMPTS_JSON. Samples 4 responses per prompt, pushes the
weights of UPDATED_DIR through `update_weights`, samples again, and prints one JSON line starting RESULT.
"""

import json
import sys

if __name__ == "__main__":
    from transformers import AutoModelForCausalLM

    from reasonrl.engines.base import GenerationRequest, SamplingSettings
    from reasonrl.engines.vllm import VLLMEngine

    model_dir, updated_dir, prompts = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
    engine = VLLMEngine(model_dir, seed=0, max_model_len=256)
    requests = [GenerationRequest(prompt_ids=ids) for ids in prompts for _ in range(4)]
    sampling = SamplingSettings(max_new_tokens=10, temperature=1.0)
    greedy = SamplingSettings(max_new_tokens=10, temperature=0.0)

    def run(settings: SamplingSettings) -> list[dict]:
        return [
            {"ids": g.response_ids, "logprobs": g.logprobs, "finish": g.finish_reason}
            for g in engine.generate(requests, settings)
        ]

    before, before_greedy = run(sampling), run(greedy)
    # Stop tokens (an episode's `</tool_call>`): tokens the model just sampled, so some responses hit one.
    stop_ids = tuple(sorted(set(before[0]["ids"][:3])))
    stopped = run(SamplingSettings(max_new_tokens=10, temperature=1.0, stop_token_ids=stop_ids))
    updated = AutoModelForCausalLM.from_pretrained(updated_dir)
    engine.update_weights(updated.named_parameters(), version=1)
    after, after_greedy = run(sampling), run(greedy)
    # Teacher-forced scoring (speculative rollouts' verification) of what was just sampled, under the same weights.
    scored = engine.score([GenerationRequest(r.prompt_ids, g["ids"]) for r, g in zip(requests, after, strict=True)])
    print(
        "RESULT "
        + json.dumps(
            {
                "before": before,
                "before_greedy": before_greedy,
                "after": after,
                "after_greedy": after_greedy,
                "after_scored": [{"ids": g["ids"], "logprobs": s.logprobs} for g, s in zip(after, scored, strict=True)],
                "version": engine.version,
                "stop_ids": list(stop_ids),
                "stopped": stopped,
            }
        )
    )
