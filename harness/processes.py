"""The processes a stack runs, read from /proc: which are still alive, which
role each plays, how much CPU they used; and stopping a process group the
way Ctrl-C does."""

from __future__ import annotations

import os
import signal
import subprocess
from collections import defaultdict
from pathlib import Path

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")

# A server process's role, by words of its command line (first match wins).
ROLES = (
    ("actions.server", "actions"),
    ("rasa run", "rasa"),
    ("gunicorn", "crm"),
    ("nginx", "lb"),
    ("handoffs follow", "follower"),
    ("webhooks worker", "webhooks"),
    ("multiprocessing.spawn", "nlu"),  # a Rasa instance's NLU worker (bot/patches/nlu_worker.py)
)
# The scaled profile's shared services, by process name (/proc/<pid>/comm).
SERVICES = {"postgres": "postgresql", "redis-server": "redis", "beam.smp": "rabbitmq"}


def descendants(pid: int) -> set[int]:
    """Every live process below ``pid``, read from /proc."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie does not)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def cpu_seconds(pid: int) -> float:
    """User and system CPU time ``pid`` has used so far."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime + stime


def role(pid: int) -> str | None:
    """What a stack's process does (ROLES); None for the shell wrappers
    (honcho's, scripts/respawn.sh), whose children are counted instead."""
    command = cmdline(pid)
    if "respawn.sh" in command or command.startswith(("bash ", "/bin/sh ", "/usr/bin/bash ")):
        return None
    for words, name in ROLES:
        if words in command:
            return name
    return None


def roles_below(pid: int | None, services: bool = False) -> dict[str, list[int]]:
    """The server processes below ``pid`` (a stack's run script) by role; with
    ``services`` also this machine's PostgreSQL, Redis and RabbitMQ."""
    roles: dict[str, list[int]] = defaultdict(list)
    if pid is None:
        return roles
    for child in descendants(pid):
        name = role(child)
        if name:
            roles[name].append(child)
    if services:
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                name = SERVICES.get((entry / "comm").read_text().strip())
            except OSError:
                continue
            if name:
                roles[name].append(int(entry.name))
    return roles


def cpu_by_role(roles: dict[str, list[int]]) -> dict[str, float]:
    return {name: sum(cpu_seconds(pid) for pid in pids) for name, pids in roles.items()}


def loadavg() -> str:
    """The 1, 5 and 15 minute load averages, as /proc/loadavg shows them."""
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def stop_group(process: subprocess.Popen | None, timeout: float = 30) -> None:
    """SIGINT to the process group (what Ctrl-C does), SIGKILL if it lingers."""
    if process is None or process.poll() is not None:
        return
    try:
        os.killpg(process.pid, signal.SIGINT)
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)
    except ProcessLookupError:
        pass


def stop_on_signals() -> None:
    """Ctrl-C (even if the shell that started us ignores SIGINT) and SIGTERM
    raise KeyboardInterrupt, so a benchmark unwinds through its ``finally``
    and stops every process it started."""
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _interrupted)


def _interrupted(signum, frame) -> None:
    raise KeyboardInterrupt
