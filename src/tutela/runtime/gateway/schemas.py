"""Wire shapes: OpenAI- and Anthropic-style error bodies, and the scan API (Palo Alto AIRS shape)."""

from __future__ import annotations

from typing import Any

import orjson
from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import Response

ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    405: "invalid_request_error",
    408: "timeout_error",
    413: "request_too_large",
    415: "invalid_request_error",
    429: "rate_limit_error",
    502: "api_error",
    503: "api_error",
    504: "timeout_error",
}


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(body), status_code=status, media_type="application/json", headers=headers)


def error_response(
    status: int,
    message: str,
    *,
    code: str | None = None,
    anthropic: bool = False,
    extra: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    etype = ERROR_TYPES.get(status, "invalid_request_error")
    if anthropic:
        body: dict[str, Any] = {"type": "error", "error": {"type": etype, "message": message}}
    else:
        body = {"error": {"message": message, "type": etype, "param": None, "code": code}}
    if extra:
        body["tutela"] = extra
    return json_response(body, status, headers)


# --- scan API --------------------------------------------------------------------------------


class _Loose(BaseModel):
    model_config = ConfigDict(extra="allow")


class AiProfile(_Loose):
    profile_name: str | None = Field(None, max_length=256)
    profile_id: str | None = Field(None, max_length=256)


class ScanMetadata(_Loose):
    app_name: str | None = Field(None, max_length=256)
    app_user: str | None = Field(None, max_length=256)
    ai_model: str | None = Field(None, max_length=256)


class ToolEvent(_Loose):
    metadata: dict[str, Any] = Field(default_factory=dict)
    input: str | None = None
    output: str | None = None


class McpTool(_Loose):
    name: str = Field(max_length=256)
    description: str | None = None
    inputSchema: dict[str, Any] | None = None


class ScanContent(_Loose):
    prompt: str | None = None
    response: str | None = None
    context: str | None = None  # retrieved documents (grounding)
    code_prompt: str | None = None
    code_response: str | None = None
    tool_event: ToolEvent | None = None
    tools: list[McpTool] | None = Field(None, max_length=1000)  # MCP tools/list: descriptions are judged


class ScanRequest(_Loose):
    tr_id: str | None = Field(None, max_length=256)
    ai_profile: AiProfile = Field(default_factory=AiProfile)
    metadata: ScanMetadata = Field(default_factory=ScanMetadata)
    contents: list[ScanContent] = Field(min_length=1, max_length=100)


class BatchItem(_Loose):
    req_id: int | str
    scan_req: ScanRequest


PROMPT_FLAGS = ("url_cats", "dlp", "injection", "toxic_content", "malicious_code", "agent", "topic_violation")
RESPONSE_FLAGS = (
    "url_cats",
    "dlp",
    "db_security",
    "toxic_content",
    "malicious_code",
    "agent",
    "ungrounded",
    "topic_violation",
)
# Category words (the runtime detectors' categories: prompt_injection, obfuscation, pii, secret, source_code,
# malicious_url, exfiltration, dangerous_sql, topic) -> Palo Alto's detection flags.
_FLAG_WORDS = {
    "injection": ("injection", "jailbreak", "obfuscation"),
    "dlp": ("pii", "secret", "dlp", "credential", "leak", "source_code"),
    "url_cats": ("url", "exfil", "domain"),
    "db_security": ("sql", "database"),
    "malicious_code": ("malicious_code", "malware", "shell"),
    "toxic_content": ("toxic", "hate", "violence", "harass"),
    "agent": ("tool", "mcp", "agent"),
    "topic_violation": ("topic",),
    "ungrounded": ("ungrounded", "hallucinat"),
}


def detected_flags(categories: list[str], names: tuple[str, ...]) -> dict[str, bool]:
    flags = dict.fromkeys(names, False)
    for cat in categories:
        low = cat.lower()
        for flag in names:
            if any(w in low for w in _FLAG_WORDS.get(flag, ())):
                flags[flag] = True
    return flags
