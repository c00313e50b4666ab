"""Closed-loop conversations over Rasa's REST channel (`POST
/webhooks/rest/webhook`), the load of bench.conversations and
bench.chat_abuse: each simulated customer sends its next message as soon as
it has the reply to the last one, and starts a new conversation (a new sender
id) when one ends. Needs aiohttp (the bot environment).
"""

from __future__ import annotations

import asyncio
import json
import statistics
import time
from dataclasses import dataclass

import aiohttp

from harness.load.flows import Bot, Script, Turn
from harness.report import log
from harness.stats import percentile

REQUEST_TIMEOUT = 30.0


@dataclass
class Sample:
    """One message and its reply: when it was sent and answered, and what went wrong."""

    kind: str
    sent: float
    done: float
    error: str | None = None
    off_script: bool = False

    @property
    def latency_ms(self) -> float:
        return (self.done - self.sent) * 1000


def reply_text(replies: list[dict]) -> str:
    return " ".join(str(reply.get("text", "")) for reply in replies)


async def send(session: aiohttp.ClientSession, bot: Bot, sender: str, script: Script, turn: Turn) -> Sample:
    body = {"sender": sender, "message": turn.message}
    metadata = bot.metadata(script)
    if metadata:
        body["metadata"] = metadata
    sent = time.monotonic()
    error, off_script, seen = None, False, ""
    try:
        async with session.post(f"{bot.url}/webhooks/rest/webhook", json=body) as response:
            payload = await response.read()
            if response.status != 200:
                error, seen = f"HTTP {response.status}", payload[:200].decode(errors="replace")
            else:
                replies = json.loads(payload)
                seen = reply_text(replies)
                if not replies:
                    error = "empty reply"
                elif not turn.on_script(seen):
                    off_script = True
    except asyncio.TimeoutError:
        error = "timeout"
    except (aiohttp.ClientError, ValueError) as problem:
        error = f"{type(problem).__name__}: {problem}"[:120]
    sample = Sample(turn.kind, sent, time.monotonic(), error, off_script)
    if (error or off_script) and turn.kind not in bot.problems:
        bot.problems[turn.kind] = f"{error or 'off-script'} to {turn.message!r}: {seen[:160]!r}"
    return sample


async def drive(bot: Bot, concurrency: int, duration: float, tag: str) -> tuple[list[Sample], float, float]:
    """`concurrency` closed loops for `duration` seconds; (samples, window start, window end)."""
    samples: list[Sample] = []
    connector = aiohttp.TCPConnector(limit=0)
    timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        start = time.monotonic()
        deadline = start + duration

        async def customer(number: int) -> None:
            conversation = 0
            while time.monotonic() < deadline:
                script = bot.scripts[(number + conversation) % len(bot.scripts)]
                sender = script.sender.format(tag=f"{tag}-{number}-{conversation}")
                conversation += 1
                for turn in script.turns:
                    if time.monotonic() >= deadline:
                        return
                    sample = await send(session, bot, sender, script, turn)
                    samples.append(sample)
                    if sample.error:
                        break  # the conversation's state is unknown: start a new one

        await asyncio.gather(*(customer(n) for n in range(concurrency)))
    return samples, start, deadline


def latency_figures(samples: list[Sample]) -> dict:
    """Count and latency percentiles of ``samples`` in ms. A timeout counts
    with the time it waited: leaving it out would flatter the tail."""
    latencies = [s.latency_ms for s in samples if not s.error or s.error == "timeout"]
    rounded = lambda v: None if v is None else round(v, 1)  # noqa: E731
    return {
        "count": len(samples),
        "p50_ms": rounded(percentile(latencies, 50)),
        "p95_ms": rounded(percentile(latencies, 95)),
        "p99_ms": rounded(percentile(latencies, 99)),
        "mean_ms": rounded(statistics.fmean(latencies)) if latencies else None,
        "max_ms": rounded(max(latencies)) if latencies else None,
    }


def warm_up(bot: Bot, tag: str) -> None:
    """Every script twice, all at once: models, caches and connections warm."""
    bot.problems.clear()

    async def go() -> list[Sample]:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=REQUEST_TIMEOUT)) as session:
            async def one(number: int, script: Script) -> list[Sample]:
                sender = script.sender.format(tag=f"{tag}-warm-{number}")
                return [await send(session, bot, sender, script, turn) for turn in script.turns]

            runs = [one(n, script) for n, script in enumerate(bot.scripts * 2)]
            return [sample for run in await asyncio.gather(*runs) for sample in run]

    samples = asyncio.run(go())
    log(f"{bot.name}: warm-up, {len(samples)} messages, p50 {latency_figures(samples)['p50_ms']} ms")
    for kind, problem in bot.problems.items():
        log(f"{bot.name}: WARNING in warm-up, {kind}: {problem}")
    bot.problems.clear()
