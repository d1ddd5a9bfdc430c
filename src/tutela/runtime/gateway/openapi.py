"""The gateway's own OpenAPI 3.1 description (GET /openapi.json): what schemathesis fuzzes in the bench."""

from __future__ import annotations

from typing import Any

from tutela.runtime.gateway.schemas import BatchItem, ScanRequest

_TEXT_PARTS = {
    "oneOf": [
        {"type": "string"},
        {
            "type": "array",
            "items": {"type": "object", "properties": {"type": {"type": "string"}, "text": {"type": "string"}}},
        },
    ]
}
_TOOLS = {"type": "array", "items": {"type": "object"}}


def _obj(props: dict[str, Any], required: list[str]) -> dict[str, Any]:
    return {"type": "object", "properties": props, "required": required}


def _post(summary: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {
        "post": {
            "summary": summary,
            "requestBody": {"required": True, "content": {"application/json": {"schema": schema}}},
            "responses": {"200": {"description": "the upstream's answer, judged"}, "default": {"description": "error"}},
        }
    }


def _get(summary: str) -> dict[str, Any]:
    return {
        "get": {"summary": summary, "responses": {"200": {"description": "ok"}, "default": {"description": "error"}}}
    }


def openapi_spec() -> dict[str, Any]:
    components: dict[str, Any] = {}

    def model(cls: Any) -> dict[str, Any]:
        schema = cls.model_json_schema(ref_template="#/components/schemas/{model}")
        components.update(schema.pop("$defs", {}))
        components[cls.__name__] = schema
        return {"$ref": f"#/components/schemas/{cls.__name__}"}

    message = _obj({"role": {"type": "string", "enum": ["system", "developer", "user", "assistant", "tool"]},
                    "content": _TEXT_PARTS}, ["role"])  # fmt: skip
    chat = _obj({"model": {"type": "string"}, "messages": {"type": "array", "items": message},
                 "stream": {"type": "boolean"}, "tools": _TOOLS, "user": {"type": "string"}},
                ["model", "messages"])  # fmt: skip
    completion = _obj(
        {"model": {"type": "string"}, "prompt": _TEXT_PARTS, "stream": {"type": "boolean"}}, ["model", "prompt"]
    )
    embeddings = _obj({"model": {"type": "string"}, "input": _TEXT_PARTS}, ["model", "input"])
    responses = _obj({"model": {"type": "string"}, "input": _TEXT_PARTS, "instructions": {"type": "string"},
                      "stream": {"type": "boolean"}}, ["model", "input"])  # fmt: skip
    amsg = _obj(
        {"role": {"type": "string", "enum": ["user", "assistant"]}, "content": _TEXT_PARTS}, ["role", "content"]
    )
    messages = _obj({"model": {"type": "string"}, "max_tokens": {"type": "integer", "minimum": 1},
                     "messages": {"type": "array", "items": amsg}, "system": _TEXT_PARTS,
                     "stream": {"type": "boolean"}, "tools": _TOOLS}, ["model", "max_tokens", "messages"])  # fmt: skip
    paths = {
        "/v1/chat/completions": _post("OpenAI chat completions", chat),
        "/v1/completions": _post("OpenAI completions", completion),
        "/v1/embeddings": _post("OpenAI embeddings", embeddings),
        "/v1/responses": _post("OpenAI Responses API", responses),
        "/v1/messages": _post("Anthropic messages", messages),
        "/v1/models": _get("models of the upstream"),
        "/v1/scan/sync/request": _post("scan API", model(ScanRequest)),
        "/v1/scan/sync/batch": _post("scan API, batch", {"type": "array", "items": model(BatchItem), "maxItems": 100}),
        "/health": _get("gateway and detector health"),
    }
    return {
        "openapi": "3.1.0",
        "info": {"title": "tutela AI gateway", "version": "1"},
        "paths": paths,
        "components": {"schemas": components},
    }
