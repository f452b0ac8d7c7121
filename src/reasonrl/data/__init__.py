"""Prompts for training and evaluation: built-in tasks, dataset files, rendering, and the training sampler.

`load_prompts("sum")`, `load_prompts("gsm8k:data/test.jsonl?size=100")` or `load_prompts(DataSource(...))`
all give a `list[Prompt]`; `render_prompt` turns one into the model's input string; `PromptSampler` hands
training prompts out in resumable, seeded epochs; `heldout_prompts` builds an eval set for a task.
"""

from reasonrl.data.answers import gsm8k_final_answer, last_boxed
from reasonrl.data.catalog import TaskInfo, list_tasks
from reasonrl.data.errors import DataError
from reasonrl.data.heldout import heldout_prompts
from reasonrl.data.loading import SourceSpec, as_source, load_prompts, load_source, to_spec
from reasonrl.data.presets import PRESETS, Preset
from reasonrl.data.records import LoadReport, Prompt
from reasonrl.data.rendering import prompt_messages, render_prompt
from reasonrl.data.sampler import PromptSampler
from reasonrl.data.tasks import DEFAULT_TASK_SIZE

__all__ = [
    "DEFAULT_TASK_SIZE",
    "PRESETS",
    "DataError",
    "LoadReport",
    "Preset",
    "Prompt",
    "PromptSampler",
    "SourceSpec",
    "TaskInfo",
    "as_source",
    "gsm8k_final_answer",
    "heldout_prompts",
    "last_boxed",
    "list_tasks",
    "load_prompts",
    "load_source",
    "prompt_messages",
    "render_prompt",
    "to_spec",
]
