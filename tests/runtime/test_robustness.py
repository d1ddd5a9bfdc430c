"""Hostile and broken input: clear 4xx answers, no crash; failure policy and /health."""

from __future__ import annotations

import json
import socket
import time

import httpx
import pytest

from tests.runtime.conftest import PROFILES, RunningGateway, run_gateway
from tests.runtime.fake_upstream import FakeUpstream

CHAT = "/v1/chat/completions"


def post(gw: RunningGateway, content: bytes, path: str = CHAT, **headers: str) -> httpx.Response:
    return httpx.post(
        gw.url + path, content=content, headers={"content-type": "application/json", **headers}, timeout=20
    )


def test_malformed_json_invalid_utf8_and_wrong_shapes(gw: RunningGateway) -> None:
    for bad in (b"{", b"", b"[1, 2]", b'"str"', b"\xff\xfe{}", b'{"messages": "\xc3\x28"}'):
        r = post(gw, bad)
        assert r.status_code == 400, bad
        assert r.json()["error"]["type"] == "invalid_request_error"
    assert post(gw, b"{", "/v1/messages").json()["type"] == "error"  # Anthropic-style there
    weird = {
        "model": "m",
        "messages": [None, 5, {"role": "user", "content": [None, {"type": "image_url"}]}, {"role": 7}],
    }
    assert post(gw, json.dumps(weird).encode()).status_code == 200  # odd but harmless parts are skipped


def test_body_over_limit_413(upstream: FakeUpstream, tmp_path: object) -> None:
    with run_gateway(tmp_path / "h", upstream.base, PROFILES, max_body_bytes=4096) as gw:  # type: ignore[operator]
        big = json.dumps({"model": "m", "messages": [{"role": "user", "content": "x" * 10_000}]}).encode()
        assert post(gw, big).status_code == 413
        # without a content-length (chunked upload) the limit holds too
        r = httpx.post(
            gw.url + CHAT, content=iter([big[:3000], big[3000:]]), headers={"content-type": "application/json"}
        )
        assert r.status_code == 413


def test_ten_thousand_messages(gw: RunningGateway) -> None:
    many = [{"role": "user", "content": f"message {i}"} for i in range(10_000)]
    r = post(gw, json.dumps({"model": "m", "messages": many}).encode())
    assert r.status_code == 413 and "10000 messages" in r.json()["error"]["message"]
    some = [{"role": "user", "content": f"message {i}"} for i in range(3000)]
    t0 = time.perf_counter()
    assert post(gw, json.dumps({"model": "m", "messages": some}).encode()).status_code == 200
    assert time.perf_counter() - t0 < 5  # one detector pass over the joined text, not 3000


def test_prompt_size_budget_413(gw: RunningGateway) -> None:
    body = {"model": "m", "messages": [{"role": "user", "content": "y" * 2000}]}
    r = post(gw, json.dumps(body).encode(), **{"x-tutela-app": "small"})
    assert r.status_code == 413 and "characters" in r.json()["error"]["message"]


def test_rate_limit_429(gw: RunningGateway) -> None:
    body = json.dumps({"model": "m", "messages": [{"role": "user", "content": "hi"}], "user": "rl-user"}).encode()
    codes = [post(gw, body, **{"x-tutela-app": "small"}).status_code for _ in range(5)]
    assert codes == [200, 200, 200, 429, 429]
    r = post(gw, body, **{"x-tutela-app": "small"})
    assert int(r.headers["retry-after"]) >= 1 and r.json()["error"]["type"] == "rate_limit_error"
    other = json.dumps({"model": "m", "messages": [{"role": "user", "content": "hi"}], "user": "someone-else"}).encode()
    assert post(gw, other, **{"x-tutela-app": "small"}).status_code == 200  # per user


def test_slow_client_gets_408(upstream: FakeUpstream, tmp_path: object) -> None:
    with run_gateway(tmp_path / "h", upstream.base, PROFILES, body_timeout_s=0.5) as gw:  # type: ignore[operator]
        host, port = gw.url.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port)), timeout=5) as s:
            s.sendall(
                f"POST {CHAT} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                "Content-Length: 100\r\n\r\n{".encode()
            )
            reply = s.recv(4096).decode()
        assert reply.startswith("HTTP/1.1 408")
        assert httpx.get(gw.url + "/health").status_code == 200  # still serving


def test_unknown_route_and_method(gw: RunningGateway) -> None:
    assert httpx.get(gw.url + "/v1/nope").status_code == 404
    assert httpx.get(gw.url + CHAT).status_code == 405
    assert "error" in httpx.get(gw.url + "/v1/nope").json()


def test_detector_exception_fail_open_and_health(gw: RunningGateway) -> None:
    body = json.dumps({"model": "m", "messages": [{"role": "user", "content": "BOOM say: ok"}]}).encode()
    assert post(gw, body).status_code == 200  # default profile fails open
    health = httpx.get(gw.url + "/health").json()
    assert health["detectors"]["test.boom"]["state"] == "failing"
    assert "detector exploded" in health["detectors"]["test.boom"]["last_error"]
    assert health["status"] == "degraded" and "test.boom" in health["failing_detectors"]
    assert health["fail_open"] >= 1
    metrics = httpx.get(gw.url + "/metrics").text
    assert 'tutela_gateway_detector_up{detector="test.boom"} 0' in metrics
    # a later clean run brings it back
    assert (
        post(gw, json.dumps({"model": "m", "messages": [{"role": "user", "content": "fine"}]}).encode()).status_code
        == 200
    )
    assert httpx.get(gw.url + "/health").json()["detectors"]["test.boom"]["state"] == "ok"


def test_fail_closed_on_exception_and_timeout(gw: RunningGateway) -> None:
    boom = json.dumps({"model": "m", "messages": [{"role": "user", "content": "BOOM"}]}).encode()
    r = post(gw, boom, **{"x-tutela-app": "strict"})
    assert r.status_code == 400 and "fail closed" in r.json()["error"]["message"]
    slow = json.dumps({"model": "m", "messages": [{"role": "user", "content": "SLOW"}]}).encode()
    t0 = time.perf_counter()
    r = post(gw, slow, **{"x-tutela-app": "strict"})
    assert r.status_code == 400 and time.perf_counter() - t0 < 0.9
    assert httpx.get(gw.url + "/health").json()["detectors"]["test.slow"]["timeouts"] >= 1


def test_upstream_down_is_502(tmp_path: object) -> None:
    with run_gateway(tmp_path / "h", "http://127.0.0.1:9/v1", PROFILES) as gw:  # type: ignore[operator]
        r = post(gw, json.dumps({"model": "m", "messages": [{"role": "user", "content": "hi"}]}).encode())
        assert r.status_code == 502 and r.json()["error"]["code"] == "upstream_error"


def test_no_upstream_serves_scan_api_only(tmp_path: object) -> None:
    with run_gateway(tmp_path / "h", None, PROFILES) as gw:  # type: ignore[operator]
        r = post(gw, json.dumps({"model": "m", "messages": [{"role": "user", "content": "hi"}]}).encode())
        assert r.status_code == 503 and "no upstream" in r.json()["error"]["message"]
        assert httpx.post(gw.url + "/v1/scan/sync/request", json={"contents": [{"prompt": "hi"}]}).status_code == 200


@pytest.mark.slow
def test_stream_client_disconnect_does_not_break_gateway(tmp_path: object) -> None:
    with FakeUpstream(chunk=2, delay=0.01) as up, run_gateway(tmp_path / "h", up.base, PROFILES) as gw:  # type: ignore[operator]
        body = {"model": "m", "stream": True, "messages": [{"role": "user", "content": "say: " + "word " * 200}]}
        with httpx.stream("POST", gw.url + CHAT, json=body) as r:
            for _ in r.iter_bytes():
                break  # hang up mid-stream
        assert httpx.get(gw.url + "/health").status_code == 200
        plain = {"model": "m", "messages": [{"role": "user", "content": "say: still here"}]}
        assert httpx.post(gw.url + CHAT, json=plain).json()["choices"][0]["message"]["content"] == "still here"


def test_fuzz_regressions_no_5xx(gw: RunningGateway) -> None:
    """Shapes schemathesis found or could find: unhashable roles, wrong types everywhere."""
    bodies = [
        {"model": "m", "messages": [{"role": {"x": 1}, "content": "hi"}]},  # found by schemathesis: was a 500
        {"model": "m", "messages": [{"role": ["user"], "content": {"text": 1}}]},
        {"model": "m", "messages": [], "tools": [{"function": "nope"}, 3, {"function": {"name": 5}}]},
        {"model": "m", "messages": [{"role": "user", "content": "hi"}], "stream": "yes"},
    ]
    for body in bodies:
        assert post(gw, json.dumps(body).encode()).status_code < 500, body
    weird = [{"model": "m", "input": [{"role": {}, "content": 1}, {"type": "function_call_output", "output": 5}]}]
    for body in weird:
        assert post(gw, json.dumps(body).encode(), "/v1/responses").status_code < 500
    anth = {"model": "m", "max_tokens": 1, "messages": [{"role": {}, "content": [{"type": "document", "source": 1}]}]}
    assert post(gw, json.dumps(anth).encode(), "/v1/messages").status_code < 500
    spec = httpx.get(gw.url + "/openapi.json").json()
    assert spec["openapi"].startswith("3.1") and "/v1/chat/completions" in spec["paths"]


def test_health_and_metrics_show_the_loop_lag_and_gc_counters(gw: RunningGateway) -> None:
    import gc

    deadline = time.monotonic() + 5  # the lag timer ticks every gateway.loop_lag_tick_s (50 ms)
    while not httpx.get(gw.url + "/health").json()["stalls"]["loop_lag_ticks"]:
        assert time.monotonic() < deadline, "the loop-lag timer never ticked"
        time.sleep(0.02)
    before = httpx.get(gw.url + "/health").json()["stalls"]
    gc.collect()  # timed by the gateway's gc.callbacks hook, whichever thread runs it
    after = httpx.get(gw.url + "/health").json()["stalls"]
    assert after["gc_collections"][2] == before["gc_collections"][2] + 1
    assert after["loop_lag_ticks"] > 0 and after["loop_lag_max_s"] >= 0
    metrics = httpx.get(gw.url + "/metrics").text
    for name in (
        'tutela_gateway_loop_lag_seconds_bucket{le="+Inf"}',
        'tutela_gateway_gc_collections_total{generation="2"}',
        "tutela_gateway_gc_pause_seconds_max",
    ):
        assert name in metrics
