"""bot.patches: one registry, BOT_PATCHES selects, a Rasa other than the pinned one gets none."""

import logging
import re
from pathlib import Path

import pytest

from bot import patches

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def fresh_registry(monkeypatch):
    """The registry as before its first install() (restored afterwards)."""
    monkeypatch.setattr(patches, "_active", None)
    monkeypatch.setattr(patches, "_originals", {})


def test_every_patch_module_is_in_the_registry_and_every_entry_has_its_module():
    modules = {path.stem for path in (REPO / "bot" / "patches").glob("*.py") if path.stem != "__init__"}
    assert modules == set(patches.NAMES)


def test_the_pinned_rasa_is_the_locked_one():
    (locked,) = re.findall(r"^rasa==(\S+)", (REPO / "requirements" / "bot.lock").read_text(), re.MULTILINE)
    assert patches.PINNED_RASA == locked


@pytest.mark.parametrize(
    ("value", "expected"),
    [("all", set(patches.NAMES)), ("", set(patches.NAMES)), ("off", set()), ("OFF", set()),
     (" lazy_ted , past_states", {"lazy_ted", "past_states"})],
)
def test_bot_patches_selects(value, expected):
    assert patches.selected(value) == expected


def test_an_unknown_name_is_one_error_line_naming_the_valid_ones(caplog):
    with caplog.at_level(logging.ERROR, logger="bot.patches"):
        chosen = patches.selected("lazy_ted,lazy_tde")
    assert chosen == {"lazy_ted"}
    (record,) = caplog.records
    assert "lazy_tde" in record.message and all(name in record.message for name in patches.NAMES)


def test_another_rasa_version_gets_no_patch_and_one_error_line(fresh_registry, monkeypatch, caplog):
    monkeypatch.setattr(patches, "rasa_version", lambda: "3.6.20")
    with caplog.at_level(logging.INFO, logger="bot.patches"):
        assert patches.install({"BOT_PATCHES": "all"}) == frozenset()
    errors = [r.message for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1 and "3.6.20" in errors[0] and patches.PINNED_RASA in errors[0]
    assert "Rasa patches active (BOT_PATCHES=all): none." in caplog.text
    assert not patches.active("lazy_ted") and patches.listeners() == []


def test_install_says_which_patches_are_active_and_does_nothing_the_second_time(fresh_registry, caplog):
    # Two patches whose install() leaves an installed replacement as it is.
    with caplog.at_level(logging.INFO, logger="bot.patches"):
        first = patches.install({"BOT_PATCHES": "past_states,event_types"})
        second = patches.install({"BOT_PATCHES": "off"})
    assert first == second == {"past_states", "event_types"}
    assert caplog.text.count("Rasa patches active") == 1
    assert "Rasa patches active (BOT_PATCHES=past_states,event_types): past_states, event_types." in caplog.text


def test_the_process_has_every_patch_by_default():
    assert all(patches.active(name) for name in patches.NAMES)


def test_asking_for_a_patch_that_does_not_exist_is_a_bug():
    with pytest.raises(KeyError, match="no patch named 'lazy_tde'"):
        patches.active("lazy_tde")
