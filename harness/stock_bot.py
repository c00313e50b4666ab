"""The stock `rasa init` bot the benchmarks measure ours against: built once
into var/bench/stock-bot (`rasa init --no-prompt`, which trains its model),
reused while it has a model, started on a free port with its REST channel
and, for the socket.io benchmarks, Rasa's own socket.io channel. Needs the
bot environment (aiohttp, PyYAML, Rasa's command line).
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import time
from pathlib import Path

import aiohttp
import yaml

from harness import BENCH_DIR, REPO
from harness.ports import free_port
from harness.report import log

STOCK_DIR = BENCH_DIR / "stock-bot"
RASA = REPO / ".venv" / "bot" / "bin" / "rasa"
# The scaffold's REST channel and Rasa's socket.io channel (write_socketio_credentials).
SOCKETIO_CREDENTIALS = "credentials.socketio.yml"


def stock_model() -> Path | None:
    """The stock bot's newest trained model, if it has one."""
    models = sorted((STOCK_DIR / "models").glob("*.tar.gz"), key=lambda p: p.stat().st_mtime)
    return models[-1] if models else None


def build_stock_bot(children: list[subprocess.Popen]) -> Path:
    """`rasa init --no-prompt` once; later runs reuse its model."""
    model = stock_model()
    if model:
        log(f"stock bot: reusing {model.relative_to(REPO)}")
        return model
    log("stock bot: rasa init --no-prompt (trains its model, a few minutes the first time)")
    STOCK_DIR.mkdir(parents=True, exist_ok=True)
    with (BENCH_DIR / "stock-bot-init.log").open("wb") as out:
        init = subprocess.Popen(
            [str(RASA), "init", "--no-prompt", "--init-dir", str(STOCK_DIR)],
            cwd=REPO, env=bot_env(), stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )
        children.append(init)
        code = init.wait()
    model = stock_model()
    if code != 0 or model is None:
        raise SystemExit(f"rasa init failed (exit {code}); see {BENCH_DIR / 'stock-bot-init.log'}")
    return model


def bot_env() -> dict[str, str]:
    """No telemetry calls home, no TensorFlow chatter, logs as they come."""
    return {**os.environ, "RASA_TELEMETRY_ENABLED": "false", "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONUNBUFFERED": "1"}


def needs_action_server(bot_dir: Path) -> bool:
    endpoints = yaml.safe_load((bot_dir / "endpoints.yml").read_text()) or {}
    return bool(endpoints.get("action_endpoint"))


def start_stock_bot(
    model: Path, run_dir: Path, children: list[subprocess.Popen], credentials: str = "credentials.yml"
) -> tuple[str, list[subprocess.Popen]]:
    """Starts the stock bot (and its action server, if its endpoints name one)
    with logs in ``run_dir``; its URL once its model is loaded, and the
    processes started (Rasa last). Every process is also added to ``children``,
    which the caller stops (harness.processes.stop_group)."""
    started: list[subprocess.Popen] = []
    if needs_action_server(STOCK_DIR):
        # The scaffold's endpoints.yml leaves action_endpoint commented out; this
        # only matters if someone enabled it in the cached bot.
        actions = subprocess.Popen(
            [str(RASA), "run", "actions", "--actions", "actions"],
            cwd=STOCK_DIR, env=bot_env(), stdout=(run_dir / "stock-actions.log").open("wb"),
            stderr=subprocess.STDOUT, start_new_session=True,
        )
        children.append(actions)
        started.append(actions)
    port = free_port()
    rasa = subprocess.Popen(
        [
            str(RASA), "run", "--interface", "127.0.0.1", "--port", str(port), "--model", str(model),
            "--enable-api", "--endpoints", "endpoints.yml", "--credentials", credentials,
        ],
        cwd=STOCK_DIR, env=bot_env(), stdout=(run_dir / "stock-rasa.log").open("wb"),
        stderr=subprocess.STDOUT, start_new_session=True,
    )
    children.append(rasa)
    started.append(rasa)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        if rasa.poll() is not None:
            raise SystemExit(f"the stock bot exited with {rasa.returncode}; see {run_dir / 'stock-rasa.log'}")
        if asyncio.run(answers(url)):
            return url, started
        time.sleep(1)
    raise SystemExit(f"the stock bot did not answer in 600 s; see {run_dir / 'stock-rasa.log'}")


async def answers(url: str) -> bool:
    """Whether Rasa says its model is loaded (GET /status)."""
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session:
            async with session.get(f"{url}/status") as response:
                return response.status == 200 and bool((await response.json()).get("model_file"))
    except (aiohttp.ClientError, asyncio.TimeoutError, ValueError):
        return False


def write_socketio_credentials() -> str:
    """Switches Rasa's socket.io channel on beside the scaffold's REST channel,
    as a widget needs it; the credentials file's name, for start_stock_bot."""
    (STOCK_DIR / SOCKETIO_CREDENTIALS).write_text(
        "# Written by harness/stock_bot.py: the scaffold's REST channel and Rasa's socket.io channel.\n"
        "rest:\n"
        "socketio:\n"
        "  user_message_evt: user_uttered\n"
        "  bot_message_evt: bot_uttered\n"
        "  session_persistence: true\n"
    )
    return SOCKETIO_CREDENTIALS
