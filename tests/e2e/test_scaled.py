"""The scaled profile (`make run-scaled`), started for real: nginx in front of
the CRM on PostgreSQL, two Rasa instances (PostgreSQL tracker store, Redis
lock store, socket.io rooms in Redis, events to RabbitMQ) and two action
servers, on free ports with databases, a queue and channels of its own.

Skipped, with the reason, when PostgreSQL, Redis or RabbitMQ does not answer
on this machine or nginx is not installed.
"""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import threading
import time
import uuid

import pytest
import requests
from sqlalchemy import create_engine, text

from crm_backend.rasa import RasaClient
from harness import REPO
from harness.ports import port_is_open
from harness.processes import alive, descendants
from harness.scaled import ScaledStack, missing_services
from harness.widget_client import WidgetClient

MISSING = missing_services()
pytestmark = pytest.mark.skipif(bool(MISSING), reason="the scaled stack needs them: " + "; ".join(MISSING))


@pytest.fixture(scope="module")
def scaled(tmp_path_factory):
    started_at = time.monotonic()
    running = ScaledStack(var_dir=tmp_path_factory.mktemp("scaled") / "var")
    try:
        running.start()
        print(f"scaled stack ready in {time.monotonic() - started_at:.0f} s")
        running.sign_in_agent()  # through the load balancer; handoffs then go to a person
        yield running
    finally:
        running.stop()
        running.remove_state()


@pytest.fixture(scope="module")
def console(scaled):
    key = scaled.api_key("e2e-console", "handoffs:read", "handoffs:write")
    return {"Authorization": f"Bearer {key}"}


def test_a_rest_conversation_through_the_load_balancer(scaled):
    # Rasa behind the balancer, its action server behind the balancer, the CRM on PostgreSQL.
    replies = scaled.say_signed_in("lb-session-ada", "hi", "ada@example.com", "Ada Lovelace")

    assert replies[0]["text"].startswith("Hi Ada")


def test_the_shop_page_points_the_widget_at_the_load_balancer(scaled):
    page = requests.get(f"{scaled.lb_url}/", timeout=10)
    widget = requests.get(f"{scaled.lb_url}/widget.js", timeout=10)

    assert f'data-server="http://127.0.0.1:{scaled.lb_port}"' in page.text
    assert widget.status_code == 200 and len(widget.content) > 10_000


def test_a_socket_on_one_instance_gets_replies_produced_on_the_other(scaled):
    instance_a, instance_b = scaled.rasa_instance_urls
    client = WidgetClient(instance_a)
    session_id = client.session_id
    try:
        bot_reply = client.say("hi")
        # An agent's reply, appended through instance B's HTTP API as the CRM does it.
        RasaClient(url=instance_b, token=scaled.rasa_token).send_agent_message(session_id, "Sam here, from B", "Sam")
        agent_reply = client.replies.get(timeout=15)
    finally:
        client.close()

    assert bot_reply["text"].startswith("Hi")
    assert agent_reply == {"text": "Sam here, from B", "agent_name": "Sam"}


def test_socketio_long_polling_through_the_load_balancer_is_sticky(scaled):
    import socketio

    replies: queue.Queue = queue.Queue()
    confirmed: queue.Queue = queue.Queue()
    client = socketio.Client(reconnection=False)
    client.on("bot_uttered", replies.put)
    client.on("session_confirm", confirmed.put)
    client.connect(scaled.lb_url, transports=["polling"], wait_timeout=10)
    try:
        client.emit("session_request", {})
        session_id = confirmed.get(timeout=10)["session_id"]  # issued by the server
        client.emit("user_uttered", {"message": "hi", "session_id": session_id})
        reply = replies.get(timeout=30)
    finally:
        # Over polling, python-socketio's disconnect often waits for its last
        # long-poll to time out (30 s, also without nginx): don't wait for it.
        threading.Thread(target=client.disconnect, daemon=True).start()

    assert reply["text"].startswith("Hi")


def test_a_handoff_through_the_load_balancer_reaches_the_crm_through_rabbitmq(scaled, console):
    token = scaled.identity_token("ada@example.com", "Ada Lovelace")
    client = WidgetClient(scaled.lb_url, custom_data={"identity_token": token})
    session_id = client.session_id
    api = f"{scaled.lb_url}/api/v1"
    try:
        client.send("I need to talk to a person about my refund for the kettle")
        assert "A person will reply right here" in " ".join(m.get("text", "") for m in client.replies_until_quiet())
        [handoff] = requests.get(
            f"{api}/handoffs", params={"conversation_id": session_id}, headers=console, timeout=10
        ).json()["items"]

        # Paused: the bot says nothing, but the message goes Rasa -> RabbitMQ -> the CRM's consumer.
        client.send("hello? are you there?")
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            detail = requests.get(f"{api}/handoffs/{handoff['id']}", headers=console, timeout=10).json()
            if any(m["sender"] == "customer" for m in detail["messages"]):
                break
            time.sleep(0.25)
        # The assistant's "a person will reply" came through the same queue.
        assert [(m["sender"], m["text"]) for m in detail["messages"] if m["sender"] == "customer"] == [
            ("customer", "hello? are you there?")
        ]
        assert [m["sender"] for m in detail["messages"]][0] == "bot"

        # The agent's reply goes CRM -> balancer -> any Rasa instance -> Redis -> the customer's socket.
        claimed = requests.post(
            f"{api}/handoffs/{handoff['id']}/claim", json={"agent_email": "agent@example.com"}, headers=console, timeout=10
        )
        assert claimed.status_code == 200, claimed.text
        sent = requests.post(
            f"{api}/handoffs/{handoff['id']}/messages",
            json={"agent_email": "agent@example.com", "text": "Hi Ada, I'm on it."},
            headers=console,
            timeout=10,
        )
        assert sent.status_code == 201, sent.text
        assert client.next_words(timeout=15) == {"text": "Hi Ada, I'm on it.", "agent_name": "Demo Agent"}
    finally:
        client.close()


def established_connections(port: int) -> int:
    """Established TCP connections whose server side is 127.0.0.1:port (/proc/net/tcp)."""
    count = 0
    for line in open("/proc/net/tcp").read().splitlines()[1:]:
        local, _, state = line.split()[1:4]
        if state == "01" and int(local.split(":")[1], 16) == port:
            count += 1
    return count


def test_websockets_through_the_load_balancer_are_spread_over_both_instances(scaled):
    # Every client here comes from 127.0.0.1: hashing the address would put
    # them all on one instance. Websockets need no stickiness and are spread.
    before = [established_connections(port) for port in (scaled.rasa_port, scaled.rasa2_port)]
    clients = [WidgetClient(scaled.lb_url) for _ in range(4)]
    try:
        replies = [client.say("hi") for client in clients]
        after = [established_connections(port) for port in (scaled.rasa_port, scaled.rasa2_port)]
    finally:
        for client in clients:
            client.close()

    assert all(reply["text"].startswith("Hi") for reply in replies)
    assert [a - b >= 1 for a, b in zip(after, before)] == [True, True], (before, after)


def test_identity_sessions_and_chat_limits_hold_across_the_balancer_and_both_instances(scaled):
    """Issue 19 on the scaled profile: both Rasa instances verify the same
    signed identities and session tokens, and count one sender's messages
    together (in Redis), wherever the balancer sends them."""
    from concurrent.futures import ThreadPoolExecutor

    def texts(replies):
        return " ".join(reply.get("text", "") for reply in replies)

    signed = texts(scaled.say_signed_in(f"lb-signed-{uuid.uuid4().hex[:8]}", "hi", "ada@example.com", "Ada Lovelace"))
    unsigned = texts(scaled.say(f"lb-unsigned-{uuid.uuid4().hex[:8]}", "hi", metadata={"email": "ada@example.com"}))

    instance_a, instance_b = scaled.rasa_instance_urls
    owner = WidgetClient(instance_a)
    try:
        intruder = WidgetClient(scaled.lb_url, owner.session_id)  # the id without its token
        resumed = WidgetClient(instance_b, owner.session_id, owner.session_token)  # the id with it, elsewhere
        intruder.close()
        resumed.close()
    finally:
        owner.close()

    flooder = f"lb-flooder-{uuid.uuid4().hex[:8]}"

    def flood(n: int) -> requests.Response:
        # Straight to the instances in turn: each sees half of the burst.
        return requests.post(
            f"{scaled.rasa_instance_urls[n % 2]}/webhooks/rest/webhook",
            json={"sender": flooder, "message": "hi"},
            timeout=180,
        )

    with ThreadPoolExecutor(20) as pool:
        burst = [pool.submit(flood, n) for n in range(40)]
        bystander = pool.submit(scaled.say, f"lb-bystander-{uuid.uuid4().hex[:8]}", "hi")
        statuses = [future.result().status_code for future in burst]
        bystanders_reply = texts(bystander.result())

    assert signed.startswith("Hi Ada")
    assert "Ada" not in unsigned
    assert intruder.session_id != owner.session_id
    assert resumed.session_id == owner.session_id
    assert statuses.count(429) >= 10, statuses
    assert set(statuses) <= {200, 429}, statuses
    assert bystanders_reply.startswith("Hi")


def rasa_pid(scaled, port: int) -> int:
    for pid in descendants(scaled.process.pid):
        command = open(f"/proc/{pid}/cmdline", "rb").read().replace(b"\0", b" ").decode()
        if "rasa run" in command and f"--port {port} " in command and "respawn.sh" not in command:
            return pid
    raise AssertionError(f"no Rasa process on port {port}")


def test_a_rasa_instance_killed_is_started_again_and_customers_carry_on(scaled):
    victim = rasa_pid(scaled, scaled.rasa_port)

    os.kill(victim, signal.SIGKILL)
    # Meanwhile the balancer sends everything to the other instance.
    answers = [scaled.say(f"carry-on-{n}@example.com", "hi") for n in range(4)]
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        try:
            if requests.get(f"http://127.0.0.1:{scaled.rasa_port}/status", timeout=5,
                            params={"token": scaled.rasa_token}).ok:
                break
        except requests.ConnectionError:
            pass
        time.sleep(1)

    assert all(reply and reply[0]["text"].startswith("Hi") for reply in answers)
    assert rasa_pid(scaled, scaled.rasa_port) != victim
    assert "respawn: rasa1 exited with status 137" in scaled.log()
    assert requests.get(f"http://127.0.0.1:{scaled.rasa_port}/status", timeout=5,
                        params={"token": scaled.rasa_token}).ok


def action_server_pids(scaled) -> list[int]:
    pids = []
    for pid in descendants(scaled.process.pid):
        command = open(f"/proc/{pid}/cmdline", "rb").read().replace(b"\0", b" ").decode()
        if "actions.server" in command and "respawn.sh" not in command:
            pids.append(pid)
    assert len(pids) == 2, pids
    return pids


def wait_for_rasa(scaled, port: int, seconds: float = 240) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if requests.get(f"http://127.0.0.1:{port}/status", timeout=5, params={"token": scaled.rasa_token}).ok:
                return
        except requests.ConnectionError:
            pass
        time.sleep(1)


def widget_connecting(url: str, session_id: str | None = None, session_token: str | None = None,
                      custom_data: dict | None = None, seconds: float = 30) -> WidgetClient:
    """A WidgetClient that, like the widget (widget/src/connection.js: socket.io-client
    tries again after 0.5 s, doubling up to 4 s), tries again while connecting fails."""
    import socketio

    delay, deadline = 0.5, time.monotonic() + seconds
    while True:
        try:
            return WidgetClient(url, session_id, session_token, custom_data)
        except socketio.exceptions.ConnectionError as error:
            if time.monotonic() + delay > deadline:
                raise
            print(f"connecting to {url} failed ({error}); trying again in {delay:g} s")
            time.sleep(delay)
            delay = min(delay * 2, 4)


def test_a_reply_cut_off_when_its_rasa_instance_dies_is_completed_once_after_the_widgets_resend(scaled):
    """A Rasa instance killed half-way through a reply: its first message has
    reached the customer, the rest and the saved turn have not. The message is
    not handled, so the widget sends it again through the balancer; the other
    instance answers it once (after the dead instance's conversation lock
    expires, Rasa's 60 s), marked as a replay, and says it is handled."""
    ids = [uuid.uuid4().hex for _ in range(3)]
    ada = {"identity_token": scaled.identity_token("ada@example.com", "Ada Lovelace")}
    complaint = "my order NW-482913 arrived with a cracked blender jug and it leaks"
    victim_port = scaled.rasa2_port
    victim = rasa_pid(scaled, victim_port)
    on_victim = widget_connecting(f"http://127.0.0.1:{victim_port}", custom_data=ada)
    session_id = on_victim.session_id
    # A ticket made: "thank you" now gets "Glad I could help!" and then the
    # score question, which a custom action (action_feedback_intro) leads to.
    for text_, message_id in ((complaint, ids[0]), ("yes", ids[1])):
        on_victim.send(text_, message_id=message_id)
        assert on_victim.handled.get(timeout=60) == {"message_id": message_id}
    made = on_victim.replies_until_quiet(first_timeout=1, quiet=1)
    assert "TCK-" in " ".join(m.get("text", "") for m in made)
    # Hold the reply half-way: the custom action waits for a stopped action server.
    stopped = action_server_pids(scaled)
    for pid in stopped:
        os.kill(pid, signal.SIGSTOP)
    try:
        on_victim.send("thank you", message_id=ids[2])
        first_part = on_victim.replies.get(timeout=30)
        time.sleep(1)
        os.kill(victim, signal.SIGKILL)
    finally:
        for pid in stopped:
            os.kill(pid, signal.SIGCONT)
    rest = on_victim.replies_until_quiet(first_timeout=2, quiet=1)
    # The widget reconnects through the balancer (to the instance still up) and sends the message again.
    reconnected = widget_connecting(scaled.lb_url, session_id, on_victim.session_token, custom_data=ada)
    try:
        reconnected.send("thank you", message_id=ids[2], resend=True)
        # The dead instance's ticket holds the conversation's lock until it expires (Rasa's 60 s).
        handled = reconnected.handled.get(timeout=100)
        answer = reconnected.replies_until_quiet(first_timeout=1, quiet=1)
    finally:
        reconnected.close()
        threading.Thread(target=on_victim.close, daemon=True).start()
    tracker = requests.get(f"{scaled.rasa_instance_urls[0]}/conversations/{session_id}/tracker",
                           params={"token": scaled.rasa_token}, timeout=10).json()
    wait_for_rasa(scaled, victim_port)  # respawn.sh brings it back for the next tests

    assert first_part["text"] == "Glad I could help!" and rest == [] and on_victim.handled.empty()
    assert handled == {"message_id": ids[2]}
    # Answered afresh (the cut-off turn was never saved), every part marked
    # as the replay of that message: the widget shows the parts after the first.
    assert answer and all(m.get("replay_of") == ids[2] for m in answer), answer
    assert answer[0]["text"] == "Glad I could help!"
    assert "1 (poor) to 5 (excellent)" in answer[-1]["text"]
    assert [(e["text"], e["message_id"]) for e in tracker["events"] if e.get("event") == "user"] == [
        (complaint, ids[0]), ("yes", ids[1]), ("thank you", ids[2]),
    ]
    assert "respawn: rasa2 exited with status 137" in scaled.log()


def test_crm_init_db_run_concurrently_against_the_running_stack_is_harmless(scaled):
    runs = [
        subprocess.Popen(
            [str(REPO / ".venv/backend/bin/crm"), "init-db"],
            cwd=REPO,
            env={"PATH": "/usr/bin:/bin", "DATABASE_URL": scaled.database_url, "VAR_DIR": str(scaled.var_dir)},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for _ in range(3)
    ]
    results = [(run.wait(timeout=180), run.stdout.read()) for run in runs]

    assert [code for code, _ in results] == [0, 0, 0], "\n".join(output for _, output in results)
    engine = create_engine(scaled.database_url)
    with engine.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM alembic_version")).scalar_one() == 1
    engine.dispose()
    assert requests.get(f"{scaled.lb_url}/readyz", timeout=10).status_code == 200


def test_ctrl_c_stops_every_process(scaled):
    processes = descendants(scaled.process.pid)

    scaled.interrupt(timeout=60)

    assert [pid for pid in processes if alive(pid)] == [], "processes left running after Ctrl-C"
    deadline = time.monotonic() + 10
    while any(port_is_open(port) for port in scaled.ports) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert [port for port in scaled.ports if port_is_open(port)] == []
