"""bot.settings: every setting the bot reads, with its default, from one place."""

import logging
import re
from pathlib import Path

import pytest

from bot import settings
from bot.settings import BotSettings, ChatLimits

BOT = Path(__file__).resolve().parents[2] / "bot"


def test_an_empty_environment_gives_the_documented_defaults():
    assert settings.from_env({}) == BotSettings(
        patches="all",
        nlu_worker=True,
        nlu_worker_timeout=5.0,
        identity_secret=None,
        socketio_redis_url=None,
        socketio_redis_channel="helpdesk-socketio",
        chat_limits=ChatLimits(2000, 4096, 20, 60, 600, 3600, None, "helpdesk:chat-rate:"),
    )


def test_values_are_read_and_typed():
    read = settings.from_env({
        "BOT_PATCHES": " lazy_ted,past_states ",
        "CHAT_IDENTITY_SECRET": " kept as written ",
        "SOCKETIO_REDIS_URL": "redis://127.0.0.1:6379/3",
        "CHAT_MAX_MESSAGE_CHARS": "500",
        "CHAT_RATE_LIMIT_REDIS_URL": "redis://127.0.0.1:6379/4",
        "CHAT_RATE_LIMIT_REDIS_PREFIX": "stack-1:",
    })
    assert read.patches == "lazy_ted,past_states"
    assert read.identity_secret == " kept as written "
    assert read.socketio_redis_url == "redis://127.0.0.1:6379/3"
    assert (read.chat_limits.max_message_chars, read.chat_limits.redis_url, read.chat_limits.redis_prefix) == (
        500, "redis://127.0.0.1:6379/4", "stack-1:"
    )


def test_a_value_of_the_wrong_kind_is_said_in_the_log_and_the_default_used(caplog):
    with caplog.at_level(logging.WARNING, logger="bot.settings"):
        read = settings.from_env({"CHAT_SENDER_BURST": "oops", "CHAT_IP_BURST": "-3"})
    assert (read.chat_limits.sender_burst, read.chat_limits.ip_burst) == (20, 0)
    assert "CHAT_SENDER_BURST='oops' is not a whole number; using 20." in caplog.text


@pytest.mark.parametrize(("value", "expected"), [("1", True), ("", False), ("0", False), ("off", False), ("yes", True)])
def test_the_nlu_worker_switch(value, expected):
    assert settings.from_env({"BOT_NLU_WORKER": value}).nlu_worker is expected


@pytest.mark.parametrize(("value", "expected"), [("2.5", 2.5), ("0", 5.0), ("-1", 5.0), ("soon", 5.0), ("", 5.0)])
def test_the_nlu_worker_timeout(value, expected):
    assert settings.from_env({"BOT_NLU_WORKER_TIMEOUT": value}).nlu_worker_timeout == expected


def test_no_other_module_of_bot_reads_the_environment():
    readers = sorted(
        path.relative_to(BOT.parent).as_posix()
        for path in BOT.rglob("*.py")
        if path.name != "settings.py" and re.search(r"os\.environ|os\.getenv", path.read_text())
    )
    assert readers == [], "read settings through bot/settings.py"


def test_every_variable_read_is_documented():
    source = (BOT / "settings.py").read_text()
    docstring, code = source.split('"""', 2)[1], source.split('"""', 2)[2]
    assert set(re.findall(r'"([A-Z][A-Z_]+)"', code)) <= set(re.findall(r"``([A-Z][A-Z_]+)``", docstring))
