"""The Rasa process of `make run` as it runs: its TensorFlow threads, its frozen model, its NLU worker.

(That every trained model loads, with the patches and without, is tests/bot/test_patches_off.py's.)"""

import os
import signal
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from harness.processes import descendants


def rasa_server_pid(stack) -> int:
    for pid in descendants(stack.process.pid):
        try:
            command = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if any(part.endswith(b"rasa") for part in command) and b"run" in command and b"actions" not in command:
            return pid
    raise AssertionError("no `rasa run` process under the stack")


def environment(pid: int) -> dict:
    pairs = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    return dict(pair.decode().split("=", 1) for pair in pairs if b"=" in pair)


def test_rasa_runs_tensorflow_on_one_thread_per_pool(stack):
    env = environment(rasa_server_pid(stack))
    assert (env["TF_INTER_OP_PARALLELISM_THREADS"], env["TF_INTRA_OP_PARALLELISM_THREADS"]) == ("1", "1")


def test_rasa_froze_its_loaded_model_out_of_full_collections(stack):
    assert "Froze" in stack.log() and "long-lived objects out of full garbage collections" in stack.log()



def cpu_ticks(pid: int) -> int:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime + stime


def say_at_once(stack, texts: list[str]) -> list[list[dict]]:
    """Each text from a customer of its own, all at the same time (the server busy: the worker parses)."""
    with ThreadPoolExecutor(len(texts)) as pool:
        return list(pool.map(lambda text: stack.say(f"nlu-{uuid.uuid4().hex}", text), texts))


def test_a_busy_rasa_parses_messages_in_its_nlu_worker(stack):
    pid = stack.nlu_worker_pid()
    assert pid in descendants(rasa_server_pid(stack))
    assert b"multiprocessing" in Path(f"/proc/{pid}/cmdline").read_bytes()
    before = cpu_ticks(pid)

    replies = say_at_once(stack, ["hi", "do you take paypal?"] * 6)

    assert all(r[0]["text"].startswith("Hi") for r in replies[0::2])
    assert all("PayPal" in r[0]["text"] for r in replies[1::2])
    assert cpu_ticks(pid) > before  # the worker did some of the parsing


def test_the_conversation_goes_on_when_the_nlu_worker_dies(stack):
    pid = stack.nlu_worker_pid()

    os.kill(pid, signal.SIGKILL)
    replies = say_at_once(stack, ["hi", "do you take paypal?"] * 6)

    assert all(r[0]["text"].startswith("Hi") for r in replies[0::2])
    assert all("PayPal" in r[0]["text"] for r in replies[1::2])
    assert "The NLU worker failed (the worker process died)" in stack.log()
