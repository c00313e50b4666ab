"""The loaded model of one worker process, reloaded when its file changes.

gunicorn runs several workers; each one checks the file's identity (mtime,
size, inode) at most every ``check_seconds`` and loads the new model when it
changed. Training replaces the file atomically, so a worker never reads half
of it; if a new file cannot be loaded the worker keeps the old model.
"""

import logging
import os
import threading
import time
from pathlib import Path

from threadpoolctl import threadpool_limits

from .prediction import ClassifierUnavailable


class ModelStore:
    def __init__(self, path: str | Path, check_seconds: float = 5.0, logger: logging.Logger | None = None):
        self.path = Path(path)
        self.check_seconds = check_seconds
        self.logger = logger or logging.getLogger(__name__)
        self._model = None  # a model.NeedModel once loaded
        self._signature: tuple | None = None
        self._problem: str | None = None
        self._checked_at = 0.0
        self._lock = threading.Lock()
        # Each worker serves one request at a time and gunicorn runs one worker
        # per core: threaded BLAS/OpenMP would only make workers fight.
        threadpool_limits(limits=1)

    def _file_signature(self) -> tuple | None:
        try:
            stat = os.stat(self.path)
        except OSError:
            return None
        return (stat.st_mtime_ns, stat.st_size, stat.st_ino)

    def load_if_present(self) -> None:
        with self._lock:
            self._refresh(force=True)

    def _refresh(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._checked_at < self.check_seconds:
            return
        self._checked_at = now
        signature = self._file_signature()
        if signature == self._signature and not force:
            return
        if signature is None:
            if self._model is None:
                self._problem = f"no model file at {self.path}; run `crm classifier train`"
            # A deleted file does not unload a working model.
            self._signature = None
            return
        # Imported here so that an app without a model never loads scikit-learn.
        from .model import load, version_mismatches

        try:
            model = load(self.path)
        except ClassifierUnavailable as error:
            self._signature = signature  # do not retry a bad file every request
            self._problem = str(error)
            self.logger.error("need classifier: %s", error)
            return
        for mismatch in version_mismatches(model):
            self.logger.warning("need classifier: %s was trained with %s", self.path, mismatch)
        self._model, self._signature, self._problem = model, signature, None
        self.logger.info(
            "need classifier: loaded %s (created %s, %d labels)",
            self.path,
            model.metadata.get("created_at"),
            len(model.labels),
        )

    def current(self):
        if time.monotonic() - self._checked_at >= self.check_seconds:
            with self._lock:
                self._refresh()
        model = self._model
        if model is None:
            raise ClassifierUnavailable(self._problem or "no need model is loaded")
        return model

    def readiness(self) -> str | None:
        try:
            self.current()
        except ClassifierUnavailable as error:
            return f"the need classifier is not loaded ({error})"
        return None
