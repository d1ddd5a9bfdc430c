"""LangChain's ChatOpenAI through the gateway (a framework client, not only the raw SDK)."""

from __future__ import annotations

import openai
import pytest

from tests.runtime.conftest import RunningGateway

langchain_openai = pytest.importorskip("langchain_openai")


def chat(gw: RunningGateway) -> object:
    return langchain_openai.ChatOpenAI(base_url=gw.base, api_key="sk-x", model="m", max_retries=0)


def test_chatopenai_invoke_stream_and_block(gw: RunningGateway) -> None:
    llm = chat(gw)
    assert llm.invoke("say: from langchain").content == "from langchain"  # type: ignore[attr-defined]
    streamed = "".join(str(c.content) for c in llm.stream("say: streamed via langchain"))  # type: ignore[attr-defined]
    assert streamed == "streamed via langchain"
    with pytest.raises(openai.BadRequestError, match="blocked"):
        llm.invoke("FORBIDDEN words")  # type: ignore[attr-defined]
    cut = llm.invoke("rev: " + "x SECRET-ABCD1234 y"[::-1])  # type: ignore[attr-defined]
    assert cut.response_metadata["finish_reason"] == "content_filter" and "SECRET" not in str(cut.content)
