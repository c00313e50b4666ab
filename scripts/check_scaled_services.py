"""Checks the scaled profile's services and creates its PostgreSQL databases.

    python scripts/check_scaled_services.py

Reads the settings scripts/run_scaled.sh exports (POSTGRES_*, CRM_DB_NAME,
RASA_DB_NAME, REDIS_*, RABBITMQ_*). Says in one sentence per service what
does not answer and exits 1; otherwise creates the CRM's and Rasa's
databases when they are missing and exits 0.
"""

from __future__ import annotations

import os
import socket
import sys

import pika
import psycopg
from psycopg import errors, sql

TIMEOUT_SECONDS = 3


def _env(name: str, default: str = "") -> str:
    return os.environ.get(name, default)


def check_postgres() -> str | None:
    host, port = _env("POSTGRES_HOST", "127.0.0.1"), _env("POSTGRES_PORT", "5432")
    try:
        connection = psycopg.connect(
            host=host,
            port=port,
            user=_env("POSTGRES_USER", "postgres"),
            password=_env("POSTGRES_PASSWORD") or None,
            dbname="postgres",
            connect_timeout=TIMEOUT_SECONDS,
            autocommit=True,
        )
    except psycopg.Error as error:
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        return (
            f"PostgreSQL does not answer at {host}:{port} ({first_line}); start it, "
            "or point POSTGRES_HOST, POSTGRES_PORT, POSTGRES_USER and POSTGRES_PASSWORD at one."
        )
    with connection:
        for name in (_env("CRM_DB_NAME", "helpdesk_scaled_crm"), _env("RASA_DB_NAME", "helpdesk_scaled_rasa")):
            if connection.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
                continue
            try:
                connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
                print(f"Created the PostgreSQL database {name}.", flush=True)
            except errors.DuplicateDatabase:
                pass  # created by another run at the same moment
    return None


def check_redis() -> str | None:
    host, port = _env("REDIS_HOST", "127.0.0.1"), int(_env("REDIS_PORT", "6379"))
    password = _env("REDIS_PASSWORD")
    try:
        with socket.create_connection((host, port), timeout=TIMEOUT_SECONDS) as connection:
            if password:
                connection.sendall(b"AUTH " + password.encode() + b"\r\n")
                connection.recv(256)
            connection.sendall(b"PING\r\n")
            answer = connection.recv(256)
    except OSError as error:
        return f"Redis does not answer at {host}:{port} ({error.strerror or type(error).__name__}); start it, or set REDIS_HOST and REDIS_PORT."
    if not answer.startswith(b"+PONG"):
        return f"Redis at {host}:{port} refused PING ({answer.decode(errors='replace').strip()}); check REDIS_PASSWORD."
    return None


def check_rabbitmq() -> str | None:
    host, port = _env("RABBITMQ_HOST", "127.0.0.1"), int(_env("RABBITMQ_PORT", "5672"))
    parameters = pika.ConnectionParameters(
        host=host,
        port=port,
        credentials=pika.PlainCredentials(_env("RABBITMQ_USER", "guest"), _env("RABBITMQ_PASSWORD", "guest")),
        connection_attempts=1,
        socket_timeout=TIMEOUT_SECONDS,
        blocked_connection_timeout=TIMEOUT_SECONDS,
    )
    try:
        pika.BlockingConnection(parameters).close()
    except pika.exceptions.ProbableAuthenticationError:
        return f"RabbitMQ at {host}:{port} refused the user {_env('RABBITMQ_USER', 'guest')}; check RABBITMQ_USER and RABBITMQ_PASSWORD."
    except pika.exceptions.AMQPError as error:
        return f"RabbitMQ does not answer at {host}:{port} ({type(error).__name__}); start it, or set RABBITMQ_HOST and RABBITMQ_PORT."
    return None


def main() -> int:
    problems = [problem for problem in (check_postgres(), check_redis(), check_rabbitmq()) if problem]
    for problem in problems:
        print(f"error: {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
