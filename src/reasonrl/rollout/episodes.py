"""Token-exact multi-turn episodes: the rollout side of `reasonrl.agents` environments.

An episode is one response made of turns. Sampled tokens are kept verbatim (mask 1, the engine's log-probs);
what the environment says is appended as a *template delta* (mask 0, log-prob 0.0): the tokens the chat
template adds after the assistant's turn, rendered from messages alone and tokenized on their own. Policy
tokens are never decoded and re-encoded together with environment text: decode -> encode changed the ids
of 92% of random 32-token samples in the measurements behind this design (shared reference
sandbox_agents.md §2.3), which would train the policy on tokens it never sampled.

A delta is valid only when the template has the prefix property (rendering messages + a tool turn starts with
the rendering of the messages, token for token); `TemplateDeltas` checks it once at start-up and refuses
templates without it. Limits (turns, tokens per turn, tool-response tokens, the whole response) are enforced
here, so environments stay plain text-in/text-out code.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from reasonrl.agents.protocol import Environment, Message, StepResult, tools_of
from reasonrl.agents.tools import ToolLimits, tool_schema
from reasonrl.config.schema import PromptFormat, RunConfig
from reasonrl.data import Prompt
from reasonrl.data.rendering import formatted_messages, has_chat_template

if TYPE_CHECKING:
    from reasonrl.rollout.responses import Rollout

StopReason = Literal["answer", "max_turns", "length", "error"]
TOOL_CALL_END = "</tool_call>"
TRUNCATION_MARK = "..."
# Stand-ins for the conversation before a delta: a delta is the template's text after an assistant turn,
# whatever that turn said.
_BEFORE = [{"role": "user", "content": "Q"}, {"role": "assistant", "content": "A"}]
_PROBE = [{"role": "tool", "content": "42"}]


class TemplateError(ValueError):
    """The chat template cannot frame episodes token-exactly."""


@dataclass(frozen=True)
class EpisodeLimits:
    """Limits of one episode (`rollout.environment`; `max_response_tokens` is `rollout.max_new_tokens`, the
    whole response: sampled and environment tokens)."""

    max_response_tokens: int
    max_turns: int = 4
    max_turn_tokens: int | None = None
    max_tool_response_tokens: int = 128


class TemplateDeltas:
    """Token ids of an episode's opening prompt and of its environment deltas, from the tokenizer's chat
    template (`tools` are passed to it: templates that describe tools in the system prompt do so)."""

    def __init__(self, tokenizer: Any, fmt: PromptFormat, tools: list[dict[str, Any]] | None = None) -> None:
        if fmt.template == "plain" or not has_chat_template(tokenizer):
            raise TemplateError(
                "rollout.environment needs the tokenizer's chat template to frame turns (data.format.template is "
                f"{fmt.template!r}{'' if has_chat_template(tokenizer) else ' and the tokenizer has none'}); set "
                "data.format.template: chat and use a model with a chat template (builtin:tiny-tools has one)"
            )
        self.tokenizer, self.fmt, self.tools = tokenizer, fmt, tools or None
        self.eos_id = tokenizer.eos_token_id
        self.closing = self._closing()
        eos_text = tokenizer.decode([self.eos_id]) if self.eos_id is not None else ""
        # After a turn that sampled the EOS itself, only what the template puts after the EOS is added.
        self.closing_after_eos = (
            self.closing[len(eos_text) :] if eos_text and self.closing.startswith(eos_text) else self.closing
        )
        self.check_prefix_property()

    def render(self, messages: list[Message], generation_prompt: bool, tools: bool = False) -> str:
        return str(
            self.tokenizer.apply_chat_template(
                messages, tokenize=False, add_generation_prompt=generation_prompt, tools=self.tools if tools else None
            )
        )

    def encode(self, text: str) -> list[int]:
        return list(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def prompt_ids(self, messages: list[Message]) -> list[int]:
        """The opening prompt: the environment's messages with `data.format` applied, ending with the assistant
        header."""
        return self.encode(self.render(formatted_messages(messages, self.fmt), True, tools=True))

    def delta_ids(self, messages: list[Message], ended_with_eos: bool) -> list[int]:
        """What follows a sampled turn: the end of the assistant turn (the part the policy did not sample),
        `messages` as the template frames them, and the next assistant header."""
        closing = self.closing_after_eos if ended_with_eos else self.closing
        return self.encode(closing + self._suffix(messages))

    def turn_text(self, turn_ids: list[int]) -> str:
        """A sampled turn as the environment reads it: special tokens kept (`<tool_call>` may be one), its EOS
        dropped."""
        ids = turn_ids[:-1] if turn_ids and turn_ids[-1] == self.eos_id else turn_ids
        return str(self.tokenizer.decode(ids, skip_special_tokens=False))

    def display_text(self, response_ids: list[int]) -> str:
        """A whole episode as text, special tokens kept (for rollout dumps: tool calls and turns stay visible)."""
        return str(self.tokenizer.decode(response_ids, skip_special_tokens=False))

    def truncate(self, content: str, max_tokens: int) -> str:
        """`content` cut in the middle to at most `max_tokens` tokens (the start and the end of a tool's output
        say the most), marked with `...`."""
        ids = self.encode(content)
        if len(ids) <= max_tokens:
            return content
        room = max(0, max_tokens - len(self.encode(TRUNCATION_MARK)))
        head, tail = (room + 1) // 2, room // 2
        decode = self.tokenizer.decode
        return decode(ids[:head]) + TRUNCATION_MARK + (decode(ids[len(ids) - tail :]) if tail else "")

    def _closing(self) -> str:
        marker = "\u2063MARK\u2063"
        text = self.render([_BEFORE[0], {"role": "assistant", "content": marker}], False)
        if marker not in text:
            raise TemplateError(
                "the chat template does not render an assistant message's content; it cannot frame turns"
            )
        return text[text.rindex(marker) + len(marker) :]

    def _suffix(self, messages: list[Message]) -> str:
        before = self.render(_BEFORE, False)
        after = self.render([*_BEFORE, *messages], True)
        if not after.startswith(before):
            raise TemplateError(
                "the chat template re-renders earlier turns when a tool turn follows (no prefix property); episodes "
                "cannot be token-exact with it: use a template that appends turns"
            )
        return after[len(before) :]

    def check_prefix_property(self) -> None:
        """Fail loudly, before any episode, where deltas would not reproduce the template's own tokens."""
        before = self.render(_BEFORE, False)
        whole = self.encode(self.render([*_BEFORE, *_PROBE], True))
        pieces = self.encode(before) + self.encode(self._suffix(_PROBE))
        if whole != pieces:
            raise TemplateError(
                "the chat template's tokens of a conversation with a tool turn differ from its tokens before the turn "
                "plus the turn's own (no token-level prefix property): a delta would change earlier tokens"
            )


@dataclass
class Episode:
    """The state of one episode beside its tokens: its environment, turn boundaries, counters and how it
    ended (`stop_reason`, None while running). `reward` is the environment's (its steps' rewards summed,
    times the configured weight); `answer` the text the verifier judges."""

    task: Prompt
    seed: int
    environment: Environment
    turn_start: int = 0
    turns: int = 0
    tool_calls: int = 0
    tool_errors: int = 0
    reward: float = 0.0
    stop_reason: StopReason | None = None
    answer: str | None = None
    error: str = ""
    turn_texts: list[str] = field(default_factory=list)
    turn_spans: list[tuple[int, int]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """Everything but the environment, which is rebuilt by replaying `turn_texts` (`EpisodeDriver.restore`)."""
        return {
            "seed": self.seed,
            "turn_start": self.turn_start,
            "turns": self.turns,
            "tool_calls": self.tool_calls,
            "tool_errors": self.tool_errors,
            "reward": self.reward,
            "stop_reason": self.stop_reason,
            "answer": self.answer,
            "error": self.error,
            "turn_texts": list(self.turn_texts),
            "turn_spans": [list(span) for span in self.turn_spans],
        }

    def record(self) -> dict[str, Any]:
        """What a sample keeps (rollout dumps, metrics)."""
        return {k: v for k, v in self.to_json().items() if k not in ("seed", "turn_start")}


class EpisodeDriver:
    """Starts, advances, restarts and restores episodes for the rollout scheduler and the held-out evaluation."""

    def __init__(
        self,
        make_environment: Callable[[], Environment],
        deltas: TemplateDeltas,
        limits: EpisodeLimits,
        *,
        reward_weight: float = 1.0,
    ) -> None:
        self.make_environment = make_environment
        self.deltas = deltas
        self.limits = limits
        self.reward_weight = reward_weight

    @property
    def stop_token_ids(self) -> tuple[int, ...]:
        """`</tool_call>` when the tokenizer holds it as one token: a turn that calls a tool ends there."""
        ids = self.deltas.encode(TOOL_CALL_END)
        return tuple(ids) if len(ids) == 1 else ()

    @property
    def stop_strings(self) -> tuple[str, ...]:
        """`</tool_call>` as a stop string when it is several tokens (matched on the decoded text)."""
        return () if self.stop_token_ids else (TOOL_CALL_END,)

    def start(self, task: Prompt, seed: int) -> tuple[list[int], Episode]:
        """A fresh episode of `task`: its opening prompt ids and its state."""
        environment = self.make_environment()
        messages = environment.reset(task, seed)
        return self.deltas.prompt_ids(messages), Episode(task, seed, environment)

    def restart(self, episode: Episode) -> Episode:
        """The same task and seed from the beginning (its tokens were dropped)."""
        return self.start(episode.task, episode.seed)[1]

    def restore(self, task: Prompt, saved: dict[str, Any]) -> tuple[list[int], Episode]:
        """A saved episode's prompt ids and state, its environment brought back to where it was by replaying the
        saved turns (the environment's messages are already in the saved tokens and are not used again)."""
        prompt_ids, episode = self.start(task, int(saved["seed"]))
        for text in saved["turn_texts"]:
            episode.environment.step(text)
        for key in ("turn_start", "turns", "tool_calls", "tool_errors", "reward", "stop_reason", "answer", "error"):
            setattr(episode, key, saved[key])
        episode.turn_texts = list(saved["turn_texts"])
        episode.turn_spans = [(int(a), int(b)) for a, b in saved["turn_spans"]]
        return prompt_ids, episode

    def budget(self, episode: Episode, response_length: int) -> int:
        """New tokens the next generate call may sample: what is left of the response, and of the turn."""
        left = self.limits.max_response_tokens - response_length
        if self.limits.max_turn_tokens is not None:
            left = min(left, self.limits.max_turn_tokens - (response_length - episode.turn_start))
        return max(left, 0)

    def end_turn(self, member: Rollout, version: int) -> None:
        """A generate call finished `member`'s current turn: let the environment react. The episode either goes
        on (the delta is appended and the member reopened) or ends (its stop reason set; a turn or length
        limit makes the response `length`)."""
        episode = member.episode
        assert episode is not None and member.finish_reason is not None
        start, end = episode.turn_start, len(member.response_ids)
        episode.turn_spans.append((start, end))
        text = self.deltas.turn_text(member.response_ids[start:end])
        episode.turn_texts.append(text)
        episode.turns += 1
        if end >= self.limits.max_response_tokens and member.finish_reason == "length":
            self._finish(episode, "length", text)
            return
        try:
            result = episode.environment.step(text)
        except Exception as exc:  # the environment's own bug: the episode ends, the run goes on
            episode.error = f"{type(exc).__name__}: {exc}"
            self._finish(episode, "error", text)
            return
        self._count(episode, result)
        if result.done:
            self._finish(episode, "answer", str(result.info.get("answer", text)))
            return
        if episode.turns >= self.limits.max_turns:
            self._finish(episode, "max_turns", text)
            member.finish_reason = "length"
            return
        messages = [
            {**m, "content": self.deltas.truncate(m.get("content", ""), self.limits.max_tool_response_tokens)}
            if m.get("role") == "tool"
            else m
            for m in result.messages
        ]
        ended_with_eos = bool(member.response_ids) and member.response_ids[-1] == self.deltas.eos_id
        delta = self.deltas.delta_ids(messages, ended_with_eos)
        # Stop before a delta that leaves no room to answer: a response never ends on environment tokens.
        if end + len(delta) >= self.limits.max_response_tokens:
            self._finish(episode, "length", text)
            member.finish_reason = "length"
            return
        member.append_environment(delta, version)
        episode.turn_start = len(member.response_ids)

    def _count(self, episode: Episode, result: StepResult) -> None:
        episode.reward += self.reward_weight * float(result.reward)
        episode.tool_calls += int(result.info.get("tool_calls", 0))
        episode.tool_errors += int(result.info.get("tool_errors", 0))

    @staticmethod
    def _finish(episode: Episode, reason: StopReason, answer: str) -> None:
        episode.stop_reason, episode.answer = reason, answer


def tool_schemas(environment: Environment) -> list[dict[str, Any]]:
    """The JSON schemas of an environment's tools, for the chat template."""
    return [tool_schema(function) for function in tools_of(environment).values()]


def episode_driver(config: RunConfig, tokenizer: Any) -> EpisodeDriver | None:
    """The run's episode driver (`rollout.environment`), or None for single-turn responses. Builds one
    environment up front: a class that is not an environment, or a template that cannot frame turns, fails
    here, before any model is trained."""
    settings = config.rollout.environment
    if settings.name is None:
        return None
    from reasonrl.agents.registry import ENVIRONMENTS

    limits = ToolLimits(settings.max_tool_calls_per_turn, settings.tool_timeout_seconds)
    make = ENVIRONMENTS.bind(settings.name, settings.options, tool_limits=limits)
    probe = make()
    if not isinstance(probe, Environment):
        raise TypeError(
            f"rollout.environment {settings.name!r} made a {type(probe).__name__}, which lacks reset(task, seed) "
            "and step(text); subclass reasonrl.agents.ToolEnvironment or implement the Environment protocol"
        )
    return EpisodeDriver(
        make,
        TemplateDeltas(tokenizer, config.data.format, tool_schemas(probe)),
        EpisodeLimits(
            max_response_tokens=config.rollout.max_new_tokens,
            max_turns=settings.max_turns,
            max_turn_tokens=settings.max_turn_tokens,
            max_tool_response_tokens=settings.max_tool_response_tokens,
        ),
        reward_weight=settings.reward_weight,
    )
