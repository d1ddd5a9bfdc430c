"""Runs ONE peer DGA classifier inside its own environment (bench/envs/dga.txt); called by bench/dga_peers.py.

    bench/.venv-dga/bin/python bench/dga_peer_worker.py TOOL NAMES.txt OUT.json [--api-sample N]

TOOL is `dgaintel` or `dgad`. NAMES.txt holds one registrable domain per line. OUT.json gets the score of
every name (same order), the load time, the batched scoring time, and the time of the tool's own per-name
API on the first N names (what a user calling it name by name gets). Never imports tutela.
"""

from __future__ import annotations

import json
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")


def run_dgaintel(names: list[str], api_sample: int) -> dict:
    t0 = time.perf_counter()
    from dgaintel import predict  # loads its Keras model at import

    load_s = time.perf_counter() - t0
    # its get_prob vectorises a whole list into one (n, 82) batch; chunks keep memory bounded
    t1 = time.perf_counter()
    scores: list[float] = []
    for i in range(0, len(names), 4096):
        chunk = names[i : i + 4096]
        if len(chunk) == 1:
            chunk = [*chunk, chunk[0]]  # get_prob returns a scalar for one name
            scores.append(float(predict.get_prob(chunk, raw=True)[0]))
        else:
            scores += [float(v) for v in predict.get_prob(chunk, raw=True)]
    batch_s = time.perf_counter() - t1
    sample = names[:api_sample]
    t2 = time.perf_counter()
    for n in sample:
        predict.get_prob([n, n], raw=True)  # one name per call (its API returns a scalar for a single name)
    api_s = time.perf_counter() - t2
    version = _version("dgaintel")
    return {"scores": scores, "load_s": load_s, "batch_s": batch_s, "api_s": api_s, "api_n": len(sample),
            "version": version, "skipped": 0}  # fmt: skip


def run_dgad(names: list[str], api_sample: int) -> dict:
    import numpy as np
    import tldextract

    t0 = time.perf_counter()
    import dgad.schema
    from dgad.prediction import Detective

    # offline: its default tldextract instance would try to download the Public Suffix List first; this
    # tldextract's result has a 4th field (is_private) that dgad's 3-way unpacking predates
    offline = tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None)
    dgad.schema.extract = lambda name: tuple(offline(name))[:3]
    detective = Detective()
    load_s = time.perf_counter() - t0
    model = detective.model_binary.data
    max_len = int(model.input_shape[1])
    t1 = time.perf_counter()
    domains, keep = detective.prepare_domains(set(names), max_length=max_len)
    by_raw = {d.raw: d for d in domains}
    vectors, owner = [], []
    for name in names:
        d = by_raw.get(name)
        if d is None:
            continue
        for w in d.words:
            vectors.append(w.padded_token_vector)
            owner.append(name)
    probs = model.predict(np.asarray(vectors), batch_size=1024, verbose=0)[:, 0] if vectors else []
    best: dict[str, float] = {}
    for name, p in zip(owner, probs, strict=True):
        best[name] = max(best.get(name, 0.0), float(p))  # a domain is DGA when any of its words is (its rule)
    scores = [best.get(n, 0.0) for n in names]
    batch_s = time.perf_counter() - t1
    sample = names[:api_sample]
    t2 = time.perf_counter()
    doms, _ = detective.prepare_domains(set(sample))
    detective.investigate(doms)  # its own API: one predict call per word, family model for flagged words
    api_s = time.perf_counter() - t2
    return {"scores": scores, "load_s": load_s, "batch_s": batch_s, "api_s": api_s, "api_n": len(sample),
            "version": _version("dgad"), "skipped": len(keep), "max_length": max_len}  # fmt: skip


def families_seen(tool: str) -> list[str]:
    """The family labels a tool ships (dgad's label encoder, read without pickle); [] when it names none."""
    if tool != "dgad":
        return []
    import importlib.resources

    import dgad.label_encoders
    import numpy as np

    with (importlib.resources.files(dgad.label_encoders) / "encoder_81_classes.npy").open("rb") as f:
        return sorted(str(x) for x in np.load(f, allow_pickle=False).tolist())


def _version(dist: str) -> str:
    import importlib.metadata

    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def main() -> None:
    tool, names_path, out_path = sys.argv[1], sys.argv[2], sys.argv[3]
    api_sample = int(sys.argv[sys.argv.index("--api-sample") + 1]) if "--api-sample" in sys.argv else 200
    with open(names_path, encoding="utf-8") as f:
        names = [line.strip() for line in f if line.strip()]
    result = (run_dgaintel if tool == "dgaintel" else run_dgad)(names, api_sample)
    result["families"] = families_seen(tool)
    result["tensorflow"] = _version("tensorflow")
    with open(out_path, "w", encoding="utf-8") as f:
        json.dump(result, f)


if __name__ == "__main__":
    main()
