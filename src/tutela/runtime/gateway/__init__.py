"""The AI gateway: an OpenAI- and Anthropic-compatible inline firewall and scan API.

Modules: profiles (config, compiled pipelines, hot reload), engine (judging text), extract (where
the text is in each API), streaming (hold-back judging of SSE streams), routes (the proxied APIs),
scan (the scan API), budgets, keys, audit (hash-chained log), app (state, health, metrics),
server (uvicorn and the `tutela up` service).
"""
