"""The one fake of the gateway tests: a local OpenAI- and Anthropic-compatible LLM server.

It stands in for a paid external service. Standard library only (http.server, threads), HTTP/1.1
keep-alive, TCP_NODELAY on every socket (without it Nagle and delayed ACKs add ~40 ms a reply).
What it answers is steered by the last user message:
  "say: TEXT"            answer TEXT
  "rev: TXET"            answer TEXT (reversed: the prompt does not contain the answer)
  "tool: NAME {json}"    answer with a tool call to NAME with those arguments
  "status: 429"          answer that HTTP status with an OpenAI-style error body
otherwise it answers "Hello from upstream." Streams split the answer into `chunk` characters
per event, `delay` seconds apart. The last request body and headers are kept for assertions.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

DEFAULT_REPLY = "Hello from upstream."


def _last_user_text(body: dict[str, Any]) -> str:
    if isinstance(body.get("prompt"), str):
        return body["prompt"]
    if isinstance(body.get("input"), str):
        return body["input"]
    items = body.get("messages") or body.get("input") or []
    for msg in reversed(items if isinstance(items, list) else []):
        if isinstance(msg, dict) and msg.get("role") == "user":
            content = msg.get("content")
            if isinstance(content, str):
                return content
            if isinstance(content, list):
                return " ".join(p.get("text", "") for p in content if isinstance(p, dict))
    return ""


def _plan(body: dict[str, Any]) -> dict[str, Any]:
    text = _last_user_text(body).strip()
    if text.startswith("say: "):
        return {"reply": text[5:]}
    if text.startswith("rev: "):  # lets a test get an answer its prompt does not contain
        return {"reply": text[5:][::-1]}
    if text.startswith("tool: "):
        name, _, args = text[6:].partition(" ")
        return {"tool": name, "args": args or "{}"}
    if text.startswith("status: "):
        return {"status": int(text[8:11])}
    return {"reply": DEFAULT_REPLY}


class FakeUpstream:
    def __init__(self, *, chunk: int = 4, delay: float = 0.0) -> None:
        self.chunk = chunk
        self.delay = delay
        self.requests: list[tuple[str, dict[str, str], dict[str, Any]]] = []
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.base = f"http://127.0.0.1:{self.port}/v1"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> FakeUpstream:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    @property
    def last(self) -> tuple[str, dict[str, str], dict[str, Any]]:
        return self.requests[-1]

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        up = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self) -> None:
                super().setup()
                self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

            def log_message(self, format: str, *args: Any) -> None:
                return

            def _json(self, status: int, body: Any) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                if self.path == "/v1/models":
                    self._json(
                        200,
                        {
                            "object": "list",
                            "data": [{"id": "fake-model", "object": "model", "created": 0, "owned_by": "tests"}],
                        },
                    )
                else:
                    self._json(404, {"error": {"message": "no such path", "type": "invalid_request_error"}})

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                up.requests.append((self.path, {k.lower(): v for k, v in self.headers.items()}, body))
                plan = _plan(body)
                if "status" in plan:
                    err = {
                        "error": {"message": f"upstream says {plan['status']}", "type": "upstream_test", "code": None}
                    }
                    return self._json(plan["status"], err)
                route = self.path.split("?")[0].removeprefix("/v1")
                stream = body.get("stream") is True
                model = body.get("model", "fake-model")
                if route == "/embeddings":
                    n = len(body["input"]) if isinstance(body.get("input"), list) else 1
                    data = [{"object": "embedding", "index": i, "embedding": [0.1, 0.2, 0.3]} for i in range(n)]
                    return self._json(
                        200,
                        {
                            "object": "list",
                            "data": data,
                            "model": model,
                            "usage": {"prompt_tokens": 3, "total_tokens": 3},
                        },
                    )
                if route == "/messages":
                    return (
                        self._anthropic_stream(plan, model) if stream else self._json(200, self._anthropic(plan, model))
                    )
                if route == "/responses":
                    if stream:
                        return self._responses_stream(plan, model)
                    return self._json(200, self._responses(plan, model))
                chat = route == "/chat/completions"
                if stream:
                    return self._openai_stream(plan, model, chat)
                return self._json(200, self._openai(plan, model, chat))

            def _openai(self, plan: dict[str, Any], model: str, chat: bool) -> dict[str, Any]:
                usage = {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}
                if not chat:
                    choice = {"index": 0, "text": plan.get("reply", ""), "finish_reason": "stop", "logprobs": None}
                    return {
                        "id": "cmpl-1",
                        "object": "text_completion",
                        "created": 1,
                        "model": model,
                        "choices": [choice],
                        "usage": usage,
                    }
                msg: dict[str, Any] = {"role": "assistant", "content": plan.get("reply")}
                finish = "stop"
                if "tool" in plan:
                    msg["tool_calls"] = [
                        {
                            "id": "call_1",
                            "type": "function",
                            "function": {"name": plan["tool"], "arguments": plan["args"]},
                        }
                    ]
                    finish = "tool_calls"
                return {
                    "id": "chatcmpl-1",
                    "object": "chat.completion",
                    "created": 1,
                    "model": model,
                    "choices": [{"index": 0, "message": msg, "finish_reason": finish}],
                    "usage": usage,
                }

            def _responses(self, plan: dict[str, Any], model: str) -> dict[str, Any]:
                out: list[dict[str, Any]]
                if "tool" in plan:
                    out = [
                        {
                            "type": "function_call",
                            "id": "fc_1",
                            "call_id": "call_1",
                            "name": plan["tool"],
                            "arguments": plan["args"],
                            "status": "completed",
                        }
                    ]
                else:
                    out = [
                        {
                            "type": "message",
                            "id": "msg_1",
                            "status": "completed",
                            "role": "assistant",
                            "content": [{"type": "output_text", "text": plan["reply"], "annotations": []}],
                        }
                    ]
                return {
                    "id": "resp_1",
                    "object": "response",
                    "created_at": 1,
                    "model": model,
                    "status": "completed",
                    "output": out,
                    "usage": {"input_tokens": 10, "output_tokens": 5, "total_tokens": 15},
                }

            def _anthropic(self, plan: dict[str, Any], model: str) -> dict[str, Any]:
                if "tool" in plan:
                    content = [
                        {"type": "tool_use", "id": "toolu_1", "name": plan["tool"], "input": json.loads(plan["args"])}
                    ]
                    stop = "tool_use"
                else:
                    content = [{"type": "text", "text": plan["reply"]}]
                    stop = "end_turn"
                return {
                    "id": "msg_1",
                    "type": "message",
                    "role": "assistant",
                    "model": model,
                    "content": content,
                    "stop_reason": stop,
                    "stop_sequence": None,
                    "usage": {"input_tokens": 10, "output_tokens": 5},
                }

            def _start_stream(self) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()

            def _send(self, data: bytes) -> None:
                self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
                self.wfile.flush()

            def _end(self) -> None:
                self.wfile.write(b"0\r\n\r\n")
                self.wfile.flush()

            def _pieces(self, text: str) -> list[str]:
                return [text[i : i + up.chunk] for i in range(0, len(text), up.chunk)] or [""]

            def _openai_stream(self, plan: dict[str, Any], model: str, chat: bool) -> None:
                self._start_stream()
                base = {
                    "id": "chatcmpl-1",
                    "object": "chat.completion.chunk" if chat else "text_completion",
                    "created": 1,
                    "model": model,
                }
                try:
                    if chat:
                        self._send(
                            b"data: "
                            + json.dumps(
                                {
                                    **base,
                                    "choices": [
                                        {
                                            "index": 0,
                                            "delta": {"role": "assistant", "content": ""},
                                            "finish_reason": None,
                                        }
                                    ],
                                }
                            ).encode()
                            + b"\n\n"
                        )
                    if "tool" in plan:
                        args = plan["args"]
                        first = {
                            "index": 0,
                            "id": "call_1",
                            "type": "function",
                            "function": {"name": plan["tool"], "arguments": ""},
                        }
                        self._send(
                            b"data: "
                            + json.dumps(
                                {
                                    **base,
                                    "choices": [{"index": 0, "delta": {"tool_calls": [first]}, "finish_reason": None}],
                                }
                            ).encode()
                            + b"\n\n"
                        )
                        for piece in self._pieces(args):
                            d = {"tool_calls": [{"index": 0, "function": {"arguments": piece}}]}
                            self._send(
                                b"data: "
                                + json.dumps(
                                    {**base, "choices": [{"index": 0, "delta": d, "finish_reason": None}]}
                                ).encode()
                                + b"\n\n"
                            )
                        finish = "tool_calls"
                    else:
                        for piece in self._pieces(plan["reply"]):
                            if up.delay:
                                time.sleep(up.delay)
                            choice = (
                                {"index": 0, "delta": {"content": piece}, "finish_reason": None}
                                if chat
                                else {"index": 0, "text": piece, "finish_reason": None}
                            )
                            self._send(b"data: " + json.dumps({**base, "choices": [choice]}).encode() + b"\n\n")
                        finish = "stop"
                    last = (
                        {"index": 0, "delta": {}, "finish_reason": finish}
                        if chat
                        else {"index": 0, "text": "", "finish_reason": finish}
                    )
                    self._send(b"data: " + json.dumps({**base, "choices": [last]}).encode() + b"\n\n")
                    self._send(b"data: [DONE]\n\n")
                    self._end()
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def _responses_stream(self, plan: dict[str, Any], model: str) -> None:
                self._start_stream()
                final = self._responses(plan, model)
                start = {**final, "status": "in_progress", "output": []}
                events: list[dict[str, Any]] = [{"type": "response.created", "response": start}]
                if "reply" in plan:
                    item = {
                        "id": "msg_1",
                        "type": "message",
                        "role": "assistant",
                        "status": "in_progress",
                        "content": [],
                    }
                    events.append({"type": "response.output_item.added", "output_index": 0, "item": item})
                    for piece in self._pieces(plan["reply"]):
                        events.append(
                            {
                                "type": "response.output_text.delta",
                                "item_id": "msg_1",
                                "output_index": 0,
                                "content_index": 0,
                                "delta": piece,
                                "logprobs": [],
                            }
                        )
                events.append({"type": "response.completed", "response": final})
                try:
                    for n, e in enumerate(events):
                        e["sequence_number"] = n
                        self._send(f"event: {e['type']}\ndata: {json.dumps(e)}\n\n".encode())
                    self._end()
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def _anthropic_stream(self, plan: dict[str, Any], model: str) -> None:
                self._start_stream()

                def ev(name: str, obj: dict[str, Any]) -> None:
                    self._send(f"event: {name}\ndata: {json.dumps(obj)}\n\n".encode())

                try:
                    msg = {
                        "id": "msg_1",
                        "type": "message",
                        "role": "assistant",
                        "model": model,
                        "content": [],
                        "stop_reason": None,
                        "stop_sequence": None,
                        "usage": {"input_tokens": 10, "output_tokens": 1},
                    }
                    ev("message_start", {"type": "message_start", "message": msg})
                    if "tool" in plan:
                        ev(
                            "content_block_start",
                            {
                                "type": "content_block_start",
                                "index": 0,
                                "content_block": {
                                    "type": "tool_use",
                                    "id": "toolu_1",
                                    "name": plan["tool"],
                                    "input": {},
                                },
                            },
                        )
                        for piece in self._pieces(plan["args"]):
                            ev(
                                "content_block_delta",
                                {
                                    "type": "content_block_delta",
                                    "index": 0,
                                    "delta": {"type": "input_json_delta", "partial_json": piece},
                                },
                            )
                        stop = "tool_use"
                    else:
                        ev(
                            "content_block_start",
                            {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
                        )
                        ev("ping", {"type": "ping"})
                        for piece in self._pieces(plan["reply"]):
                            if up.delay:
                                time.sleep(up.delay)
                            ev(
                                "content_block_delta",
                                {
                                    "type": "content_block_delta",
                                    "index": 0,
                                    "delta": {"type": "text_delta", "text": piece},
                                },
                            )
                        stop = "end_turn"
                    ev("content_block_stop", {"type": "content_block_stop", "index": 0})
                    ev(
                        "message_delta",
                        {
                            "type": "message_delta",
                            "delta": {"stop_reason": stop, "stop_sequence": None},
                            "usage": {"output_tokens": 5},
                        },
                    )
                    ev("message_stop", {"type": "message_stop"})
                    self._end()
                except (BrokenPipeError, ConnectionResetError):
                    pass

        return Handler
