"""Secrets that must stay usable (webhook signing, inbound verification), encrypted at rest.

An API key can be stored as a hash because the server only compares it; a
webhook secret has to be used as an HMAC key, so the server needs it in
plain text. It is stored as a Fernet token (AES-128-CBC + HMAC-SHA256, from
``cryptography``) under a key that does not live in the database:

- ``WEBHOOK_SECRETS_KEY``: one or more Fernet keys, comma-separated; the
  first encrypts, all decrypt (add a new key in front, re-encrypt, drop the
  old one). Use this with PostgreSQL or several hosts.
- otherwise a key file, ``WEBHOOK_SECRETS_KEY_FILE``, by default
  ``webhook_secrets.key`` beside the SQLite database (``var/`` in the
  embedded setup) or in ``$VAR_DIR`` for other databases; created (0600)
  the first time a secret is stored.

A copy of the database alone therefore does not reveal the secrets. Losing
the key makes the stored secrets useless: rotate them.
"""

import os
import tempfile
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from flask import current_app
from sqlalchemy.engine import make_url

KEY_FILE_NAME = "webhook_secrets.key"


class SecretsKeyError(RuntimeError):
    """The encryption key is missing or does not fit the stored secrets."""


def default_key_file(database_url: str, var_dir: str) -> Path:
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
        return Path(url.database).resolve().parent / KEY_FILE_NAME
    return Path(var_dir).resolve() / KEY_FILE_NAME


def _read_or_create_key_file(path: Path) -> bytes:
    try:
        return path.read_bytes().strip()
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")  # 0600
    try:
        with os.fdopen(fd, "wb") as tmp:
            tmp.write(Fernet.generate_key() + b"\n")
        # link() fails if another process created the file first: then
        # everyone uses that one.
        os.link(tmp_name, path)
    except FileExistsError:
        pass
    finally:
        Path(tmp_name).unlink(missing_ok=True)
    return path.read_bytes().strip()


class SecretBox:
    def __init__(self, keys: str | None, key_file: Path):
        self._configured = keys
        self._key_file = key_file
        self._fernet: MultiFernet | None = None

    def _load(self) -> MultiFernet:
        if self._fernet is None:
            if self._configured:
                raw = [key.strip().encode() for key in self._configured.split(",") if key.strip()]
            else:
                raw = [_read_or_create_key_file(self._key_file)]
            try:
                self._fernet = MultiFernet([Fernet(key) for key in raw])
            except ValueError as error:
                raise SecretsKeyError(
                    "WEBHOOK_SECRETS_KEY (or the key file) is not a Fernet key: 32 url-safe base64-encoded bytes"
                ) from error
        return self._fernet

    def encrypt(self, plain: str) -> str:
        return self._load().encrypt(plain.encode()).decode()

    def decrypt(self, token: str) -> str:
        try:
            return self._load().decrypt(token.encode()).decode()
        except InvalidToken as error:
            raise SecretsKeyError(
                "a stored webhook secret cannot be decrypted with the configured key; "
                "was WEBHOOK_SECRETS_KEY or the key file changed? Rotate the secret."
            ) from error


def init_app(app) -> None:
    config = app.config
    key_file = config["WEBHOOK_SECRETS_KEY_FILE"]
    app.extensions["crm_secret_box"] = SecretBox(
        config["WEBHOOK_SECRETS_KEY"],
        Path(key_file) if key_file else default_key_file(config["DATABASE_URL"], config["VAR_DIR"]),
    )


def box() -> SecretBox:
    return current_app.extensions["crm_secret_box"]
