"""The Rasa process of `make run` as it runs: its TensorFlow threads and its frozen model.

(That every trained model loads is tests/bot/test_fast_loading.py's.)"""

from pathlib import Path

from tests.e2e.stack import descendants


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

