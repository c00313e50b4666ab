"""The scaled profile (`make run-scaled`): scripts/run_scaled.sh on free ports
with a temporary var/ and databases, queue and channels of its own, started
and stopped by Stack's own start() and stop() (harness/stack.py).
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import uuid
from dataclasses import dataclass, field

from harness import REPO
from harness.ports import free_port
from harness.stack import Stack

POSTGRES = {"host": "127.0.0.1", "port": 5432, "user": "postgres"}
REDIS = ("127.0.0.1", 6379)
RABBITMQ = "amqp://guest:guest@127.0.0.1:5672/%2F"
BACKEND_PYTHON = REPO / ".venv" / "backend" / "bin" / "python"


def missing_services() -> list[str]:
    """Why the scaled stack cannot run here: one reason per missing service.
    Needs the backend environment (psycopg, pika)."""
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

    script = "run_scaled.sh"
    log_suffix = "scaled"
    what = "the scaled stack"
    start_timeout = 420.0

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

    def profile_settings(self) -> dict[str, str]:
        return {
            "LB_PORT": str(self.lb_port),
            "RASA_API_LB_PORT": str(self.rasa_api_lb_port),
            "ACTIONS_LB_PORT": str(self.actions_lb_port),
            "RASA1_PORT": str(self.rasa_port),
            "RASA2_PORT": str(self.rasa2_port),
            "ACTIONS1_PORT": str(self.actions_port),
            "ACTIONS2_PORT": str(self.actions2_port),
            "CRM_WORKERS": "2",
            "LB_WORKERS": "1",
            "POSTGRES_HOST": POSTGRES["host"],
            "POSTGRES_PORT": str(POSTGRES["port"]),
            "POSTGRES_USER": POSTGRES["user"],
            "CRM_DB_NAME": f"{self.name}_crm",
            "RASA_DB_NAME": f"{self.name}_rasa",
            "RASA_EVENTS_QUEUE": f"{self.name}_events",
            "RASA_EVENTS_EXCHANGE": f"{self.name}_exchange",
            "SOCKETIO_REDIS_CHANNEL": f"{self.name}_socketio",
            "RASA_LOCK_KEY_PREFIX": self.name.replace("_", ""),
            "SEED_DEMO_HISTORY": "0",
            # Its own chat-limit counters in the shared Redis: every stack's clients are 127.0.0.1.
            "CHAT_RATE_LIMIT_REDIS_PREFIX": f"{self.name}:chat-rate:",
        }

    def remove_state(self) -> None:
        """Drop the stack's databases, queue and exchange (after stop()).
        Needs the backend environment (psycopg, pika)."""
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


# The bot environment (the load benchmarks) has no PostgreSQL or RabbitMQ
# client: these two ask the backend environment's Python.


def in_backend(code: str) -> subprocess.CompletedProcess:
    """Runs ``code`` in the backend environment, from the repository root."""
    return subprocess.run([str(BACKEND_PYTHON), "-c", code], cwd=REPO, capture_output=True, text=True, check=False)


def missing_services_from_backend() -> list[str]:
    """missing_services(), from either environment."""
    result = in_backend("import json; from harness.scaled import missing_services; print(json.dumps(missing_services()))")
    if result.returncode != 0:
        return [f"the backend environment could not check the services: {result.stderr.strip()[-300:]}"]
    return json.loads(result.stdout.strip().splitlines()[-1])


def remove_state_from_backend(name: str) -> str | None:
    """ScaledStack(name=name).remove_state(), from either environment; what went wrong, if anything."""
    result = in_backend(
        "from pathlib import Path; from harness.scaled import ScaledStack; "
        f"ScaledStack(var_dir=Path('.'), name={name!r}).remove_state()"
    )
    return result.stderr.strip()[-300:] if result.returncode != 0 else None
