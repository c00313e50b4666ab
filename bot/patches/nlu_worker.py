"""Customers' messages understood in a second process, on the machine's other core.

One Rasa process handles every conversation on one event loop, so on a
2-core machine it uses one core while the other is mostly idle (the CRM and
the action server take a fraction of it). Understanding a message (the NLU
half of the model: tokenizer, featurizers, DIET, the response selector) was
about a quarter of that process's work under load (docs/benchmarks.md).

Here the Rasa server starts one worker process that loads only the NLU part
of the same model file and parses messages for it; while the worker parses
one conversation's message the event loop goes on with the others (predicting
actions, calling the action server, saving trackers).

The worker is asked only while the server has more than one message in
hand (``BUSY_AT``): a message on an otherwise idle server is parsed in the
server, which is quicker than handing it over (about 5 ms less at one
conversation, docs/benchmarks.md); under load the hand-over is what lets
both cores work.

Nothing depends on it:

- Until the worker has loaded (11–14 s after the server starts here) and
  whenever it fails, times out or has died, Rasa parses the message itself,
  exactly as without this module; a worker that failed is started again
  ``RESTART_DELAY`` seconds after it failed, and after twice as long each
  time a new one fails before it has parsed anything (up to
  ``MAX_RESTART_DELAY``), so a model the worker cannot load is not loaded
  over and over.
- A worker whose model is not the server's (the file was retrained in place
  between the two loads, or the model was replaced through ``PUT /model``) is
  not used; one with the server's current model replaces it.
- The worker exits when the server does, also when the server is killed
  (it checks every second whether its parent is still there).

Parse results are the same as the server's own: the same model, the same
code (``MessageProcessor._parse_message_with_graph``'s steps on the NLU
targets only); tests/bot/test_nlu_worker.py compares them.

Settings (bot/settings.py): ``BOT_NLU_WORKER`` (``1``, the default, or ``0``
to parse in the server's process), ``BOT_NLU_WORKER_TIMEOUT`` (seconds one
parse may take before the server parses the message itself; default 5).

Started by this module's ``LISTENERS``, which the socket.io channel
(bot/channels.py, in every configuration of this project) registers while the
patch is active; ``rasa test``, ``rasa shell`` and the unit tests parse in
their own process. The scaled profile and the Kubernetes manifests set
``BOT_NLU_WORKER=0``: their Rasa instances already fill the cores
(docs/benchmarks.md).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import gc
import logging
import multiprocessing
import os
import signal
import threading
import time
import warnings
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Dict, Optional, Text

from rasa.core.channels.channel import UserMessage
from rasa.core.processor import MessageProcessor
from rasa.engine.graph import ExecutionContext
from rasa.engine.runner.dask import DaskGraphRunner
from rasa.engine.storage.local_model_storage import LocalModelStorage
from rasa.utils.common import TempDirectoryPath, get_temp_dir_name

from bot import settings

logger = logging.getLogger(__name__)

RESTART_DELAY = 30.0
MAX_RESTART_DELAY = 600.0
PARENT_CHECK_INTERVAL = 1.0


def model_file(processor: MessageProcessor) -> Path:
    """The model archive the processor loaded (its path may be a directory of models)."""
    path = Path(processor.model_path)
    return path / processor.model_filename if path.is_dir() else path


# --- In the worker process -------------------------------------------------

# What MessageProcessor._parse_message_with_graph reads of a processor: the
# NLU part's graph runner and the model's metadata.
_parser: Optional[SimpleNamespace] = None


def _exit_with_parent(parent_pid: int) -> None:
    while True:
        time.sleep(PARENT_CHECK_INTERVAL)
        if os.getppid() != parent_pid:
            os._exit(0)


def _load(model_path: Text, parent_pid: int) -> None:
    """The worker's initializer: watch the parent, load the model's NLU part."""
    global _parser
    threading.Thread(target=_exit_with_parent, args=(parent_pid,), daemon=True, name="exit-with-parent").start()
    # Ctrl-C reaches the whole process group: the server stops the worker
    # (or the worker notices it has gone), without a KeyboardInterrupt here.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # The server has printed the model's warnings already.
    warnings.simplefilter("ignore")
    # Unpickling this function imported ``bot``, which installed the patches
    # BOT_PATCHES selects (inherited from the server); the model archive names
    # bot.components' classes, which Rasa imports as it reads the schema.
    with TempDirectoryPath(get_temp_dir_name()) as temporary_directory:
        storage, metadata = LocalModelStorage.from_model_archive(
            storage_path=Path(temporary_directory), model_archive_path=Path(model_path)
        )
        schema = metadata.predict_schema.minimal_graph_schema(targets=[metadata.nlu_target])
        runner = DaskGraphRunner.create(
            graph_schema=schema,
            model_storage=storage,
            execution_context=ExecutionContext(graph_schema=schema, model_id=metadata.model_id),
        )
    _parser = SimpleNamespace(graph_runner=runner, model_metadata=metadata)
    # What stays for the process's life, out of full collections (bot/gc_freeze.py).
    gc.collect()
    gc.freeze()


def _loaded_model_id() -> Optional[Text]:
    return _parser.model_metadata.model_id if _parser is not None else None


def _parse(text: Text, message_id: Optional[Text]) -> Dict[Text, Any]:
    """What ``MessageProcessor._parse_message_with_graph`` returns for this message (its own code)."""
    assert _parser is not None, "the worker has not loaded a model"
    message = UserMessage(text=text, message_id=message_id)
    return MessageProcessor._parse_message_with_graph(_parser, message, None)


# --- In the Rasa server ----------------------------------------------------


class NLUWorker:
    """One worker process with one model's NLU part; ``parse`` returns None when it cannot help."""

    def __init__(
        self, model_path: Path, model_id: Text, timeout: float = settings.BotSettings.nlu_worker_timeout
    ) -> None:
        self.model_path = Path(model_path)
        self.model_id = model_id
        self.timeout = timeout
        self.loaded = False  # the worker answered with the server's model
        self.failed = False
        self.stopped = False
        self.started_at = time.monotonic()
        self.failed_at: Optional[float] = None
        self._pool = concurrent.futures.ProcessPoolExecutor(
            max_workers=1,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_load,
            initargs=(str(self.model_path), os.getpid()),
        )
        self._pool.submit(_loaded_model_id).add_done_callback(self._on_loaded)

    def _on_loaded(self, future: concurrent.futures.Future) -> None:
        try:
            loaded = future.result()
        except BaseException as error:  # noqa: BLE001  (a worker that could not start: parse locally)
            self.failed, self.failed_at = True, time.monotonic()
            logger.warning("The NLU worker could not load %s (%s); messages are parsed in the server.",
                           self.model_path, error or type(error).__name__)
            return
        if loaded != self.model_id:
            self.failed, self.failed_at = True, time.monotonic()
            logger.warning("The NLU worker loaded model %s from %s, not the server's %s; "
                           "messages are parsed in the server.", loaded, self.model_path, self.model_id)
            return
        self.loaded = True
        logger.info("The NLU worker (pid %s) parses messages with model %s, in %.1f s.",
                    self.pid(), loaded, time.monotonic() - self.started_at)

    @property
    def ready(self) -> bool:
        return self.loaded and not self.failed and not self.stopped

    def pid(self) -> Optional[int]:
        processes = getattr(self._pool, "_processes", None) or {}
        return next(iter(processes), None)

    async def parse(self, message: UserMessage) -> Optional[Dict[Text, Any]]:
        if not self.ready:
            return None
        loop = asyncio.get_running_loop()
        try:
            future = loop.run_in_executor(self._pool, _parse, message.text, message.message_id)
            return await asyncio.wait_for(future, self.timeout)
        except asyncio.TimeoutError:
            reason = f"no answer in {self.timeout:g} s"
        except concurrent.futures.process.BrokenProcessPool:
            reason = "the worker process died"
        except Exception as error:  # noqa: BLE001  (the server's own parse below says what is wrong)
            reason = f"{type(error).__name__}: {error}"
        self.failed, self.failed_at = True, time.monotonic()
        logger.warning("The NLU worker failed (%s); the server parses messages itself until a new one has loaded.",
                       reason)
        self.stop()
        return None

    def stop(self) -> None:
        """Ends the worker process now, without waiting for a parse in progress."""
        self.stopped = True
        processes = list((getattr(self._pool, "_processes", None) or {}).values())
        self._pool.shutdown(wait=False, cancel_futures=True)
        for process in processes:
            if process.is_alive():
                process.terminate()


_worker: Optional[NLUWorker] = None
_wanted = False
_original_parse_message = MessageProcessor.parse_message
_original_handle_message = MessageProcessor.handle_message
# Messages the server is handling now (this one included) from which on the worker parses.
BUSY_AT = 2
_handling = 0
# Workers in a row that failed before they were ready (the restart delay doubles with each).
_failures_in_a_row = 0


async def handle_message(self: MessageProcessor, message: UserMessage) -> Any:
    """``MessageProcessor.handle_message``, counted: how many messages are in hand."""
    global _handling
    _handling += 1
    try:
        return await _original_handle_message(self, message)
    finally:
        _handling -= 1


def busy() -> bool:
    return _handling >= BUSY_AT


def start(processor: MessageProcessor) -> Optional[NLUWorker]:
    """Starts a worker with the processor's model, ending any other; None when switched off."""
    global _worker, _wanted
    current = settings.from_env()
    if not current.nlu_worker:
        logger.info("The NLU worker is off (BOT_NLU_WORKER=0): messages are parsed in the server.")
        stop()
        return None
    _wanted = True
    if _worker is not None:
        _worker.stop()
    _worker = NLUWorker(model_file(processor), processor.model_metadata.model_id, current.nlu_worker_timeout)
    return _worker


def stop() -> None:
    global _worker, _wanted
    _wanted = False
    if _worker is not None:
        _worker.stop()
        _worker = None


def current() -> Optional[NLUWorker]:
    return _worker


def _worker_for(processor: MessageProcessor) -> Optional[NLUWorker]:
    """The worker for this processor's model, starting a new one where the old failed or has another model."""
    global _failures_in_a_row
    worker = _worker
    if not _wanted:
        return None
    if worker is None or worker.model_id != processor.model_metadata.model_id:
        return start(processor)
    if worker.failed and time.monotonic() - (worker.failed_at or worker.started_at) >= restart_delay():
        _failures_in_a_row = 1 if worker.loaded else _failures_in_a_row + 1
        return start(processor)
    return worker


def restart_delay() -> float:
    """Seconds from a failure to the next worker: doubling while workers fail before they are ready."""
    return min(RESTART_DELAY * 2 ** max(0, _failures_in_a_row - 1), MAX_RESTART_DELAY)


async def parse_message(
    self: MessageProcessor,
    message: UserMessage,
    tracker: Any = None,
    only_output_properties: bool = True,
) -> Dict[Text, Any]:
    """``MessageProcessor.parse_message``, through the worker where it is ready and the server busy."""
    worker = None if self.http_interpreter or not only_output_properties or not busy() else _worker_for(self)
    parse_data = await worker.parse(message) if worker is not None else None
    if parse_data is None:
        return await _original_parse_message(self, message, tracker, only_output_properties)
    self._update_full_retrieval_intent(parse_data)
    self._check_for_unseen_features(parse_data)
    return parse_data


def install() -> None:
    MessageProcessor.parse_message = parse_message
    MessageProcessor.handle_message = handle_message


async def after_server_start(app: Any, _loop: Any) -> None:
    """Sanic listener: Rasa has loaded its model (``before_server_start``)."""
    agent = getattr(app.ctx, "agent", None)
    if agent is not None and agent.processor is not None:
        start(agent.processor)


async def after_server_stop(_app: Any, _loop: Any) -> None:
    stop()


LISTENERS = (("after_server_start", after_server_start), ("after_server_stop", after_server_stop))
