"""The default profile (`make run`): scripts/run_stack.sh on free ports with a
temporary var/, stopped like Ctrl-C does. ScaledStack (harness/scaled.py)
starts the scaled profile through the same start() with its own script and
settings.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import requests

from harness import READY_LINE, REPO
from harness.identity import sign_identity
from harness.ports import free_port
from harness.processes import descendants, roles_below

# Settings a developer's shell may hold for their own stack: a stack of the
# harness makes its own (secrets into its var/, URLs from its ports).
NOT_INHERITED = (
    "DATABASE_URL", "RASA_TOKEN", "CRM_API_KEY", "CRM_URL", "RASA_URL", "RASA_PUBLIC_URL",
    "CHAT_IDENTITY_SECRET", "ACTIONS_TOKEN", "REST_CHANNEL_TOKEN",
)


@dataclass
class Stack:
    var_dir: Path
    crm_port: int = field(default_factory=free_port)
    rasa_port: int = field(default_factory=free_port)
    actions_port: int = field(default_factory=free_port)
    process: subprocess.Popen | None = None
    log_path: Path | None = None
    extra_env: dict[str, str] = field(default_factory=dict)  # settings on top of the defaults

    # What start() runs, how it names the stack in its log file and errors,
    # and how long it waits by default (class attributes, not fields).
    script = "run_stack.sh"
    log_suffix = "stack"
    what = "the stack"
    start_timeout = 300.0

    @property
    def crm_url(self) -> str:
        return f"http://127.0.0.1:{self.crm_port}"

    @property
    def rasa_url(self) -> str:
        return f"http://127.0.0.1:{self.rasa_port}"

    @property
    def database_url(self) -> str:
        return f"sqlite:///{self.var_dir / 'crm.db'}"

    @property
    def rasa_token(self) -> str:
        return (self.var_dir / "rasa_token").read_text().strip()

    @property
    def identity_secret(self) -> str:
        return (self.var_dir / "chat_identity_secret").read_text().strip()

    @property
    def rest_channel_token(self) -> str:
        return (self.var_dir / "rest_channel_token").read_text().strip()

    @property
    def actions_token(self) -> str:
        return (self.var_dir / "actions_token").read_text().strip()

    def identity_token(self, email: str, name: str | None = None, seconds: float = 3600, **claims) -> str:
        """What a host site's backend signs for its signed-in customer (docs/security.md)."""
        return sign_identity(self.identity_secret, email, name, seconds, **claims)

    @property
    def ports(self) -> list[int]:
        return [self.crm_port, self.rasa_port, self.actions_port]

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path else ""

    def nlu_worker_pid(self, seconds: float = 180) -> int:
        """The NLU worker the Rasa log names as ready (bot/patches/nlu_worker.py; it loads after the server is up)."""
        deadline = time.monotonic() + seconds
        while True:
            found = re.findall(r"The NLU worker \(pid (\d+)\) parses messages", self.log())
            if found:
                return int(found[-1])
            if time.monotonic() > deadline:
                raise RuntimeError("Rasa's NLU worker did not start:\n" + self.log()[-3000:])
            time.sleep(0.5)

    def server_processes(self, services: bool = False) -> dict[str, list[int]]:
        """The stack's server processes by role (harness.processes.roles_below)."""
        return roles_below(self.process.pid if self.process else None, services)

    def profile_settings(self) -> dict[str, str]:
        """This profile's ports and sizes, as its run script reads them."""
        return {
            "RASA_PORT": str(self.rasa_port),
            "ACTIONS_PORT": str(self.actions_port),
            "CRM_WORKERS": "1",
        }

    def environment(self, timeout: float) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in NOT_INHERITED}
        env.update(
            VAR_DIR=str(self.var_dir),
            CRM_PORT=str(self.crm_port),
            READY_TIMEOUT=str(int(timeout)),
            # Handoffs go to a person whatever the hour the tests run at, as
            # long as an agent has signed in to the console (sign_in_agent).
            SUPPORT_HOURS=os.environ.get("SUPPORT_HOURS", ""),
            AGENT_ONLINE_SECONDS=os.environ.get("AGENT_ONLINE_SECONDS", "3600"),
            # The tests' webhook receivers listen on 127.0.0.1, which make run's
            # SSRF guard refuses; a test can set it back to "" in extra_env.
            WEBHOOK_ALLOW_PRIVATE=os.environ.get("WEBHOOK_ALLOW_PRIVATE", "1"),
        )
        env.update(self.profile_settings())
        env.update(self.extra_env)
        return env

    def start(self, timeout: float | None = None) -> "Stack":
        """Runs the profile's script and waits for its ready line."""
        timeout = timeout or self.start_timeout
        self.log_path = self.var_dir.parent / f"{self.var_dir.name}-{self.log_suffix}.log"
        log = self.log_path.open("wb")
        # Its own process group, so a signal to the group is what Ctrl-C in a
        # terminal does.
        self.process = subprocess.Popen(
            [str(REPO / "scripts" / self.script)],
            cwd=REPO,
            env=self.environment(timeout),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout + 30
        while time.monotonic() < deadline:
            if READY_LINE in self.log():
                return self
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.what} exited with {self.process.returncode}:\n{self.log()[-6000:]}")
            time.sleep(0.5)
        self.stop()
        raise RuntimeError(f"{self.what} was not ready in {timeout:.0f} s:\n{self.log()[-6000:]}")

    def interrupt(self, timeout: float = 30) -> int:
        """Ctrl-C: SIGINT to the foreground process group; returns the exit code."""
        assert self.process is not None
        os.killpg(self.process.pid, signal.SIGINT)
        return self.process.wait(timeout=timeout)

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        try:
            self.interrupt()
        except subprocess.TimeoutExpired:
            for pid in descendants(self.process.pid) | {self.process.pid}:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass

    def sign_in_agent(self, email: str = "agent@example.com", password: str = "northwind-demo") -> requests.Session:
        """Sign an agent in to the console, which puts them online for handoffs."""
        browser = requests.Session()
        page = browser.get(f"{self.crm_url}/console/login", timeout=10)
        token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
        response = browser.post(
            f"{self.crm_url}/console/login",
            data={"csrf_token": token, "email": email, "password": password, "next": ""},
            timeout=10,
        )
        response.raise_for_status()
        browser.get(f"{self.crm_url}/console", timeout=10).raise_for_status()
        return browser

    def api_key(self, name: str, *scopes: str) -> str:
        """A new CRM API key with ``scopes``, made with `crm create-api-key` as an operator would."""
        result = subprocess.run(
            [str(REPO / ".venv/backend/bin/crm"), "create-api-key", name, "--scopes", ",".join(scopes)],
            cwd=REPO,
            env={**os.environ, "DATABASE_URL": self.database_url},
            capture_output=True,
            text=True,
            check=True,
        )
        return result.stdout.strip().splitlines()[-1]

    def say(self, sender: str, message: str, **extra) -> list[dict]:
        """One message over Rasa's REST channel; the bot's replies."""
        response = requests.post(
            f"{self.rasa_url}/webhooks/rest/webhook",
            json={"sender": sender, "message": message, **extra},
            timeout=30,
        )
        response.raise_for_status()
        return response.json()

    def post_message(
        self, sender: str, message: str, headers: dict | None = None, timeout: float = 60, **extra
    ) -> requests.Response:
        """One message over Rasa's REST channel, the response as it is (a 429 is not raised)."""
        return requests.post(
            f"{self.rasa_url}/webhooks/rest/webhook",
            json={"sender": sender, "message": message, **extra},
            headers=headers,
            timeout=timeout,
        )

    def say_signed_in(self, sender: str, message: str, email: str, name: str | None = None) -> list[dict]:
        """A message from a customer the host site has signed in (REST ``metadata.identity_token``)."""
        return self.say(sender, message, metadata={"identity_token": self.identity_token(email, name)})
