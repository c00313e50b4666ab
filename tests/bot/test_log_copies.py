"""bot.patches.log_copies: no deep copy for a debug line that is not written, and only there."""

import ast
import importlib
import inspect
import logging

import pytest

from bot.patches import log_copies


def copy_uses(module):
    """(attribute, whether inside a structlogger.debug call) for each use of ``copy.<attribute>``."""
    tree = ast.parse(inspect.getsource(module))
    inside_debug = set()
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "debug"
            and isinstance(node.func.value, ast.Name)
            and node.func.value.id == "structlogger"
        ):
            inside_debug.update(id(child) for child in ast.walk(node))
    return [
        (node.attr, id(node) in inside_debug)
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "copy"
    ]


@pytest.mark.parametrize("name", log_copies.MODULES)
def test_the_modules_use_copy_only_for_debug_log_lines(name):
    uses = copy_uses(importlib.import_module(name))

    assert uses, f"{name} no longer uses copy: take it off MODULES"
    assert all(attribute == "deepcopy" and in_debug for attribute, in_debug in uses), uses


@pytest.mark.parametrize("name", log_copies.MODULES)
def test_the_modules_have_the_copy_that_skips_unlogged_copies(name):
    module = importlib.import_module(name)

    assert module.copy.deepcopy is log_copies.deepcopy
    assert module.copy.copy is __import__("copy").copy


@pytest.fixture
def rasa_log_level():
    logger = logging.getLogger("rasa")
    before = logger.level
    yield logger.setLevel
    logger.setLevel(before)


def test_without_debug_logging_nothing_is_copied(rasa_log_level):
    rasa_log_level(logging.INFO)
    events = [{"event": "user", "parse_data": {"entities": []}}]

    assert log_copies.deepcopy(events) is events


def test_with_debug_logging_the_log_line_gets_its_own_copy(rasa_log_level):
    rasa_log_level(logging.DEBUG)
    events = [{"event": "user", "parse_data": {"entities": []}}]

    copied = log_copies.deepcopy(events)

    assert copied == events and copied is not events and copied[0]["parse_data"] is not events[0]["parse_data"]
