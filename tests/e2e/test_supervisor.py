"""`make run`'s supervisor: Ctrl-C stops every process it started, and a
second start on the same var/ keeps the data, the token and the bot's key."""

import secrets
import sqlite3

from harness.ports import port_is_open
from harness.processes import alive, descendants
from harness.stack import Stack


def test_ctrl_c_stops_everything_and_a_restart_keeps_the_state(tmp_path):
    var_dir = tmp_path / "var"
    var_dir.mkdir(parents=True)
    # A generated token may start with "-" (1 in 64): Rasa must still take it
    # as the token, not as an option (this once failed a CI run).
    (var_dir / "rasa_token").write_text("-" + secrets.token_urlsafe(32) + "\n")
    first = Stack(var_dir=var_dir).start()
    try:
        processes = descendants(first.process.pid)
        key = (var_dir / "crm_api_key").read_text()
        token = first.rasa_token
        secret = first.identity_secret
        assert first.say("visitor-before-restart", "hi")
    finally:
        first.stop()

    assert first.process.returncode is not None
    assert [pid for pid in processes if alive(pid)] == [], "processes left running after Ctrl-C"
    assert not any(port_is_open(port) for port in first.ports)

    second = Stack(var_dir=var_dir).start()
    try:
        assert (var_dir / "crm_api_key").read_text() == key
        assert second.rasa_token == token
        assert second.identity_secret == secret  # host sites' signed identities stay valid
        with sqlite3.connect(var_dir / "crm.db") as db:
            (customers,) = db.execute(
                "SELECT count(*) FROM customers WHERE email = 'ada@example.com'"
            ).fetchone()
        assert customers == 1
        hello = second.say_signed_in("visitor-after-restart", "hello", "ada@example.com", "Ada Lovelace")
        assert "Hi Ada" in " ".join(r.get("text", "") for r in hello)
    finally:
        second.stop()
    assert not any(port_is_open(port) for port in second.ports)
