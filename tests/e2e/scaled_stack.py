"""Starts the scaled profile (scripts/run_scaled.sh, the same path as `make
run-scaled`) on free ports with a temporary var/, databases, queue and
channels of its own, and stops it like Ctrl-C does (tests/e2e/stack.py's
Stack, whose helpers it reuses).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
import uuid
from dataclasses import dataclass, field

from tests.e2e.stack import READY_LINE, REPO, Stack, free_port

POSTGRES = {"host": "127.0.0.1", "port": 5432, "user": "postgres"}
REDIS = ("127.0.0.1", 6379)
RABBITMQ = "amqp://guest:guest@127.0.0.1:5672/%2F"


def missing_services() -> list[str]:
    """Why the scaled stack cannot run here: one reason per missing service."""
    reasons = []
    try:
        import psycopg

        psycopg.connect(dbname="postgres", connect_timeout=3, **POSTGRES).close()
    except Exception as error:  # noqa: BLE001 - any failure means "not usable"
        reasons.append(f"PostgreSQL does not answer at {POSTGRES['host']}:{POSTGRES['port']} ({type(error).__name__})")
    try:
        with socket.create_connection(REDIS, timeout=3) as connection:
            connection.sendall(b"PING\r\n")
            if not connection.recv(64).startswith(b"+PONG"):
                reasons.append(f"Redis at {REDIS[0]}:{REDIS[1]} does not answer PING")
    except OSError as error:
        reasons.append(f"Redis does not answer at {REDIS[0]}:{REDIS[1]} ({error.strerror or type(error).__name__})")
    try:
        import pika

        pika.BlockingConnection(pika.URLParameters(RABBITMQ + "?connection_attempts=1&socket_timeout=3")).close()
    except Exception as error:  # noqa: BLE001
        reasons.append(f"RabbitMQ does not answer at 127.0.0.1:5672 ({type(error).__name__})")
    if shutil.which("nginx") is None:
        reasons.append("nginx is not installed (`make run-scaled` installs it: apt-get install nginx)")
    return reasons


@dataclass
class ScaledStack(Stack):
    lb_port: int = field(default_factory=free_port)
    rasa_api_lb_port: int = field(default_factory=free_port)
    actions_lb_port: int = field(default_factory=free_port)
    rasa2_port: int = field(default_factory=free_port)
    actions2_port: int = field(default_factory=free_port)
    name: str = field(default_factory=lambda: f"helpdesk_scaled_e2e_{uuid.uuid4().hex[:8]}")

    @property
    def lb_url(self) -> str:
        return f"http://127.0.0.1:{self.lb_port}"

    # What customers and agents use goes through the load balancer.
    @property
    def crm_url(self) -> str:
        return self.lb_url

    @property
    def rasa_url(self) -> str:
        return self.lb_url

    @property
    def rasa_instance_urls(self) -> list[str]:
        return [f"http://127.0.0.1:{self.rasa_port}", f"http://127.0.0.1:{self.rasa2_port}"]

    @property
    def database_url(self) -> str:
        return f"postgresql+psycopg://{POSTGRES['user']}@{POSTGRES['host']}:{POSTGRES['port']}/{self.name}_crm"

    @property
    def ports(self) -> list[int]:
        return [
            self.lb_port,
            self.rasa_api_lb_port,
            self.actions_lb_port,
            self.crm_port,
            self.rasa_port,
            self.rasa2_port,
            self.actions_port,
            self.actions2_port,
        ]

    def environment(self, timeout: float) -> dict[str, str]:
        env = {
            k: v
            for k, v in os.environ.items()
            if k
            not in (
                "DATABASE_URL", "RASA_TOKEN", "CRM_API_KEY", "CRM_URL", "RASA_URL", "RASA_PUBLIC_URL",
                "CHAT_IDENTITY_SECRET", "ACTIONS_TOKEN", "REST_CHANNEL_TOKEN",
            )
        }
        env.update(
            VAR_DIR=str(self.var_dir),
            LB_PORT=str(self.lb_port),
            RASA_API_LB_PORT=str(self.rasa_api_lb_port),
            ACTIONS_LB_PORT=str(self.actions_lb_port),
            CRM_PORT=str(self.crm_port),
            RASA1_PORT=str(self.rasa_port),
            RASA2_PORT=str(self.rasa2_port),
            ACTIONS1_PORT=str(self.actions_port),
            ACTIONS2_PORT=str(self.actions2_port),
            CRM_WORKERS="2",
            LB_WORKERS="1",
            POSTGRES_HOST=POSTGRES["host"],
            POSTGRES_PORT=str(POSTGRES["port"]),
            POSTGRES_USER=POSTGRES["user"],
            CRM_DB_NAME=f"{self.name}_crm",
            RASA_DB_NAME=f"{self.name}_rasa",
            RASA_EVENTS_QUEUE=f"{self.name}_events",
            RASA_EVENTS_EXCHANGE=f"{self.name}_exchange",
            SOCKETIO_REDIS_CHANNEL=f"{self.name}_socketio",
            RASA_LOCK_KEY_PREFIX=self.name.replace("_", ""),
            READY_TIMEOUT=str(int(timeout)),
            SEED_DEMO_HISTORY="0",
            SUPPORT_HOURS=os.environ.get("SUPPORT_HOURS", ""),
            AGENT_ONLINE_SECONDS=os.environ.get("AGENT_ONLINE_SECONDS", "3600"),
            WEBHOOK_ALLOW_PRIVATE=os.environ.get("WEBHOOK_ALLOW_PRIVATE", "1"),
            # Its own chat-limit counters in the shared Redis: every stack's clients are 127.0.0.1.
            CHAT_RATE_LIMIT_REDIS_PREFIX=f"{self.name}:chat-rate:",
        )
        env.update(self.extra_env)
        return env

    def start(self, timeout: float = 420) -> "ScaledStack":
        self.log_path = self.var_dir.parent / f"{self.var_dir.name}-scaled.log"
        log = self.log_path.open("wb")
        self.process = subprocess.Popen(
            [str(REPO / "scripts" / "run_scaled.sh")],
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
                raise RuntimeError(f"the scaled stack exited with {self.process.returncode}:\n{self.log()[-6000:]}")
            time.sleep(0.5)
        self.stop()
        raise RuntimeError(f"the scaled stack was not ready in {timeout:.0f} s:\n{self.log()[-6000:]}")

    def api_key(self, name: str, *scopes: str) -> str:
        result = subprocess.run(
            [str(REPO / ".venv/backend/bin/crm"), "create-api-key", name, "--scopes", ",".join(scopes)],
            cwd=REPO,
            env={**os.environ, "DATABASE_URL": self.database_url},
            capture_output=True,
            text=True,
            check=True,
        )
        return result.stdout.strip().splitlines()[-1]

    def remove_state(self) -> None:
        """Drop the stack's databases, queue and exchange (after stop())."""
        import pika
        import psycopg

        with psycopg.connect(dbname="postgres", autocommit=True, **POSTGRES) as connection:
            for suffix in ("crm", "rasa"):
                connection.execute(f'DROP DATABASE IF EXISTS "{self.name}_{suffix}" WITH (FORCE)')
        connection = pika.BlockingConnection(pika.URLParameters(RABBITMQ))
        channel = connection.channel()
        channel.queue_delete(f"{self.name}_events")
        channel.exchange_delete(f"{self.name}_exchange")
        connection.close()
