"""The environment registry: built-in environments by name, or the user's class as `path.py:Class`.

An environment is a class; its keyword-only `__init__` parameters are its options (`rollout.environment.
options`, checked before a run starts like every other plug-in's). `tool_limits` is context: reasonrl fills
it from `rollout.environment`, the user never sets it.
"""

from __future__ import annotations

from reasonrl.plugins import Registry

ENVIRONMENTS: Registry[type] = Registry(
    "environment",
    call="Environment(**options) per episode, then reset(task, seed) and step(text)",
    context=("tool_limits",),
)
ENVIRONMENTS.register_lazy("calculator", "reasonrl.agents.calculator:CalculatorEnvironment")
ENVIRONMENTS.register_lazy("python", "reasonrl.agents.python_tool:PythonEnvironment")
ENVIRONMENTS.register_lazy("search", "reasonrl.agents.search:SearchEnvironment")
