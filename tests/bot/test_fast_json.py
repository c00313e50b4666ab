"""bot.patches.fast_json: Rasa's requests carry the same JSON values, written by ujson."""

import asyncio
import json
import math

import pytest
from aiohttp import web
from rasa.utils.endpoints import EndpointConfig

from bot.patches import fast_json

BODY = {
    "next_action": "action_identify_customer",
    "tracker": {"events": [{"event": "user", "text": "naïve £3.95 https://x/y", "timestamp": 1764690000.123456,
                            "parse_data": {"intent": {"name": "faq", "confidence": 0.98765432123}}}]},
    "domain": {"slots": {"email": None}, "forms": {}, "n": [1, 2.5, True, None]},
}


@pytest.mark.parametrize("value", [BODY, {"a": "/\"\\\n\u2028"}, [1e-300, 1e300, -0.0, 2**53 + 1], {}])
def test_the_same_json_values(value):
    assert json.loads(fast_json.dumps(value)) == json.loads(json.dumps(value))


def test_nan_and_what_nobody_can_serialise_behave_as_with_json():
    assert math.isnan(json.loads(fast_json.dumps({"x": math.nan}))["x"])
    with pytest.raises(TypeError):
        fast_json.dumps({"x": object()})


def test_an_action_server_receives_the_body(unused_tcp_port):
    received = {}

    async def webhook(request):
        received.update(await request.json())
        received["auth"] = request.headers.get("Authorization")
        return web.json_response({"events": [], "responses": []})

    async def go():
        app = web.Application()
        app.router.add_post("/webhook", webhook)
        runner = web.AppRunner(app)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", unused_tcp_port).start()
        try:
            endpoint = EndpointConfig(f"http://127.0.0.1:{unused_tcp_port}/webhook", basic_auth={"username": "u", "password": "p"})
            return await endpoint.request(json=BODY, method="post")
        finally:
            await runner.cleanup()

    answer = asyncio.new_event_loop().run_until_complete(go())
    assert answer == {"events": [], "responses": []}
    assert received.pop("auth").startswith("Basic ")
    assert received == BODY
