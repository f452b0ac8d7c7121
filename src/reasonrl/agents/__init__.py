"""Multi-turn tool use and agents: the environment protocol, tools and the built-in environments.

See docs/agents.md. The rollout side (token-exact episodes, loss masks, limits) is `reasonrl.rollout.episodes`.
"""

from reasonrl.agents.protocol import Environment, Message, StepResult, tools_of
from reasonrl.agents.tool_env import ToolEnvironment
from reasonrl.agents.tools import ToolCall, ToolLimits, parse_tool_calls, run_tool_calls, tool_schema

__all__ = [
    "Environment",
    "Message",
    "StepResult",
    "ToolCall",
    "ToolEnvironment",
    "ToolLimits",
    "parse_tool_calls",
    "run_tool_calls",
    "tool_schema",
    "tools_of",
]
