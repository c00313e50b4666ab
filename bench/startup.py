"""How long `make run` takes until every service is healthy.

Clones the repository into a temporary directory (a fresh checkout: no
environments, no model, no var/), runs `make run` there, waits for the
"All services are healthy." line, presses Ctrl-C, then runs `make run` a
second time with nothing changed. Prints both timings and a JSON line.

    python3 -m bench.startup [--keep]

Uses free ports so it can run beside a running stack. pip's download cache
is not cleared, so the first figure is a fresh checkout on a machine that has
fetched the packages before (CI's situation after the first run).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from harness import READY_LINE, REPO
from harness.ports import free_port


def timed_make_run(checkout: Path, log_path: Path, timeout: float = 1800) -> float:
    env = dict(os.environ)
    env.update(CRM_PORT=str(free_port()), RASA_PORT=str(free_port()), ACTIONS_PORT=str(free_port()))
    started = time.monotonic()
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            ["make", "run"], cwd=checkout, env=env, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            while time.monotonic() - started < timeout:
                if READY_LINE in log_path.read_text(errors="replace"):
                    return time.monotonic() - started
                if process.poll() is not None:
                    raise SystemExit(f"make run exited with {process.returncode}; see {log_path}")
                time.sleep(0.2)
            raise SystemExit(f"make run was not ready in {timeout:.0f} s; see {log_path}")
        finally:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGINT)
                process.wait(timeout=60)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", action="store_true", help="keep the temporary checkout")
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="startup-bench-"))
    checkout = workdir / "main"
    subprocess.run(["git", "clone", "--quiet", str(REPO), str(checkout)], check=True)
    try:
        first = timed_make_run(checkout, workdir / "first.log")
        print(f"first make run (fresh checkout: envs, training, migration): {first:6.1f} s")
        second = timed_make_run(checkout, workdir / "second.log")
        print(f"second make run (nothing changed):                          {second:6.1f} s")
        print(json.dumps({"first_run_s": round(first, 1), "second_run_s": round(second, 1)}))
    finally:
        if args.keep:
            print(f"checkout kept in {checkout}", file=sys.stderr)
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
