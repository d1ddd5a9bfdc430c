"""`tutela train dns`: the lexicon, the DGA model, the DGA family model and the per-query tunnel model.

Reproducible: hash-based splits (see data.py), fixed seeds, LightGBM in deterministic single-thread
mode; the sha256 of every input file is recorded in each model's metadata. Outputs are JSON (never
pickle) written into the package's `models/` folder, and `models/pins.py` is regenerated with their
sha256, which `ModelCache` checks on every load. LightGBM and numpy are needed here only.
"""

from __future__ import annotations

import json
import math
import random
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from tutela.core.features import require
from tutela.dns.forest import to_compact
from tutela.dns.lexical import DGA_FEATURES, TUNNEL_FEATURES, Lexicon
from tutela.dns.names import NameParts, NameSplitter
from tutela.dns.scoring import dga_judged
from tutela.dns.training import synth
from tutela.dns.training.data import DnsData, load, split_of

SEED = 7
WORDS = Path(__file__).with_name("words_en.txt")
LEXICON_VERSION = "1"
MODEL_VERSION = "1"
PER_FAMILY_CAP = {"train": 3000, "val": 2000, "test": 5000}
CLOUD_NAMES = 8000
HOSTNAMES = 16000
LEVEL_FPR = {"low": 0.01, "medium": 0.003, "high": 0.0005}  # target false-positive rate per confidence level
TUNNEL_LEVEL_FPR = {"low": 0.01, "medium": 0.005, "high": 0.001}
FAMILY_MIN_TRAIN = 8

DGA_PARAMS: dict[str, Any] = {
    "objective": "binary",
    "num_leaves": 15,
    "max_depth": 6,
    "learning_rate": 0.1,
    "min_data_in_leaf": 20,
    "feature_fraction": 0.9,
    "lambda_l2": 0.0,
    "min_sum_hessian_in_leaf": 1e-6,
    "use_missing": False,
    "deterministic": True,
    "force_row_wise": True,
    "num_threads": 1,
    "seed": SEED,
    "verbosity": -1,
}
DGA_ROUNDS = 100  # inline cost: each tree costs ~0.1 µs per query in the compiled evaluator
DGA_LEARNING_RATE = 0.15
# Monotone constraints: more entropy, longer consonant runs and more unseen trigrams never lower the
# score; more dictionary coverage and likelier characters never raise it. This keeps the ranking among
# random-looking names meaningful where the training data saturates, and makes explanations honest.
DGA_MONOTONE = {
    "entropy": 1,
    "consonant_run": 1,
    "trigram_mean": -1,
    "trigram_min": -1,
    "trigram_unseen": 1,
    "bigram_mean": -1,
    "word_coverage": -1,
    "longest_word": -1,
    "fully_words": -1,
    "suffix_logprior": -1,
}
TUNNEL_ROUNDS = 60
FAMILY_PARAMS: dict[str, Any] = {**DGA_PARAMS, "objective": "multiclass", "num_leaves": 7, "max_depth": 4}
FAMILY_ROUNDS = 30

Progress = Callable[[str], None]


# -- lexicon --------------------------------------------------------------------------------------
def build_lexicon(labels: Sequence[str], suffixes: Sequence[str]) -> dict[str, Any]:
    """Character bigram/trigram log-probabilities (add-k smoothed) and suffix log-priors."""
    k = 0.1
    tri: Counter[str] = Counter()
    bi: Counter[str] = Counter()
    uni: Counter[str] = Counter()
    alphabet: set[str] = {"$"}
    for label in labels:
        p = f"^{label}$"
        alphabet.update(label)
        for i in range(len(p) - 2):
            tri[p[i : i + 3]] += 1
        for i in range(len(p) - 1):
            bi[p[i : i + 2]] += 1
            uni[p[i]] += 1
    v = len(alphabet)
    ctx: Counter[str] = Counter()
    for g, c in tri.items():
        ctx[g[:2]] += c
    r = 5
    trigram = {g: round(math.log((c + k) / (ctx[g[:2]] + k * v)), r) for g, c in tri.items()}
    ctx_unseen = {g: round(math.log(k / (c + k * v)), r) for g, c in ctx.items()}
    bigram = {g: round(math.log((c + k) / (uni[g[0]] + k * v)), r) for g, c in bi.items()}
    floor = min(ctx_unseen.values())
    sfx = Counter(suffixes)
    total = sum(sfx.values())
    prior = {s: round(math.log((c + 0.5) / (total + 0.5 * len(sfx))), r) for s, c in sfx.items() if c >= 3}
    return {
        "version": LEXICON_VERSION,
        "trigram": dict(sorted(trigram.items())),
        "trigram_ctx_unseen": dict(sorted(ctx_unseen.items())),
        "trigram_unseen": round(floor - 1.0, r),
        "bigram": dict(sorted(bigram.items())),
        "bigram_unseen": round(min(bigram.values()) - 1.0, r),
        "suffix_logprior": dict(sorted(prior.items())),
        "suffix_unseen": round(math.log(0.5 / (total + 0.5 * len(sfx))), r),
    }


def read_words(path: Path) -> list[str]:
    return [w for w in path.read_text(encoding="utf-8").split() if w and not w.startswith("#") and w.isalpha()]


# -- data sets ------------------------------------------------------------------------------------
class Sets:
    """Everything the models train and are evaluated on, split, with synthetic hard negatives."""

    def __init__(self, data: DnsData, splitter: NameSplitter, seed: int = SEED) -> None:
        self.data = data
        rng = random.Random(seed)
        self.cloud: dict[str, list[NameParts]] = {"train": [], "val": [], "test": []}
        for name in synth.generate("cloud", (), CLOUD_NAMES, seed):
            parts = splitter(name)
            self.cloud[split_of("cloud:" + parts.label, 0.5, 0.25)].append(parts)
        self.hostnames: dict[str, list[str]] = {}
        # real subdomain labels, split by label: held-out hostnames carry labels never trained on
        labels: dict[str, list[str]] = {"train": [], "val": [], "test": []}
        for label in synth.subdomain_labels():
            labels[split_of("sub:" + label, 0.5, 0.25)].append(label)
        self.wordlist_hostnames: dict[str, list[str]] = {}
        for where in ("train", "val", "test"):
            domains = [p.registrable for p in data.benign[where]]
            n = HOSTNAMES // 2 if where == "train" else HOSTNAMES // 4
            self.hostnames[where] = synth.generate(f"hostname-{where}", domains, n, seed)
            self.wordlist_hostnames[where] = synth.generate_wordlist(
                f"wordlist-{where}", labels[where], domains, n, seed
            )
        self.dga: dict[str, dict[str, list[NameParts]]] = {}
        for where, per_family in data.dga.items():
            self.dga[where] = {}
            for family, items in sorted(per_family.items()):
                cap = PER_FAMILY_CAP[where]
                self.dga[where][family] = rng.sample(items, cap) if len(items) > cap else list(items)


def dga_matrix(lex: Lexicon, parts: Sequence[NameParts]) -> Any:
    np = require("numpy", "ml")
    return np.array([lex.dga_features(p.label, p.suffix, p.private) for p in parts], dtype=np.float64).reshape(
        len(parts), len(DGA_FEATURES)
    )


def tunnel_matrix(lex: Lexicon, splitter: NameSplitter, names: Sequence[str]) -> Any:
    np = require("numpy", "ml")
    rows = [lex.tunnel_features(splitter(n).sub) for n in names]
    return np.array(rows, dtype=np.float64).reshape(len(names), len(TUNNEL_FEATURES))


def threshold_at(benign_scores: Sequence[float], fpr: float) -> float:
    """Smallest threshold t such that the share of benign scores > t is at most `fpr`."""
    s = sorted(benign_scores, reverse=True)
    allowed = math.floor(fpr * len(s))
    return float(s[allowed]) if allowed < len(s) else 0.0


def fit(params: dict[str, Any], X: Any, y: Any, rounds: int, weight: Any = None) -> Any:
    lgb = require("lightgbm", "ml")
    ds = lgb.Dataset(X, label=y, weight=weight, params={"verbosity": -1})
    return lgb.train(params, ds, num_boost_round=rounds)


def dga_training_set(lex: Lexicon, sets: Sets, where: str, exclude: str | None = None) -> tuple[Any, Any, Any]:
    """Benign (popular + cloud) vs DGA rows, with weights so each side (and each family) counts evenly."""
    np = require("numpy", "ml")
    benign = [p for p in sets.data.benign[where] + sets.cloud[where] if dga_judged(p)]
    dga_parts: list[NameParts] = []
    dga_w: list[float] = []
    families = {f: v for f, v in sets.dga[where].items() if f != exclude and v}
    for items in families.values():
        dga_parts.extend(items)
        dga_w.extend([1.0 / math.sqrt(len(items))] * len(items))
    X = np.vstack([dga_matrix(lex, benign), dga_matrix(lex, dga_parts)])
    y = np.concatenate([np.zeros(len(benign)), np.ones(len(dga_parts))])
    w_dga = np.asarray(dga_w)
    w_dga *= len(benign) / w_dga.sum()
    w = np.concatenate([np.ones(len(benign)), w_dga])
    return X, y, w


def dga_monotone() -> dict[str, Any]:
    """Monotone constraints and the learning rate of the shipped DGA model (shared with evaluation)."""
    return {
        "learning_rate": DGA_LEARNING_RATE,
        "monotone_constraints": [DGA_MONOTONE.get(name, 0) for name in DGA_FEATURES],
        "monotone_constraints_method": "basic",
    }


def _dump(path: Path, obj: Any) -> str:
    text = json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True) + "\n"
    path.write_text(text, encoding="utf-8")
    import hashlib

    return hashlib.sha256(text.encode()).hexdigest()


def train(data_root: Path, out_dir: Path, *, seed: int = SEED, progress: Progress = print) -> dict[str, Any]:
    np = require("numpy", "ml")
    lgb = require("lightgbm", "ml")
    splitter = NameSplitter()
    progress(f"reading {data_root}")
    data = load(data_root, splitter)
    sets = Sets(data, splitter, seed)
    words = read_words(WORDS)
    benign_train = data.benign["train"]
    lexicon = build_lexicon([p.label for p in benign_train], [p.suffix for p in benign_train])
    lexicon["words"] = words
    lex = Lexicon(lexicon)
    common_meta = {
        "seed": seed,
        "lightgbm": lgb.__version__,
        "data_sha256": data.hashes,
        "words_sha256": _sha(WORDS),
    }
    shas: dict[str, str] = {"lexicon": _dump(out_dir / "lexicon.json", lexicon)}

    # DGA: binary
    progress("training the DGA model")
    X, y, w = dga_training_set(lex, sets, "train")
    params = {**DGA_PARAMS, **dga_monotone(), "seed": seed}
    booster = fit(params, X, y, DGA_ROUNDS, w)
    val_benign = dga_matrix(lex, [p for p in data.benign["val"] + sets.cloud["val"] if dga_judged(p)])
    b_scores = booster.predict(val_benign)
    thresholds = {lvl: threshold_at(b_scores.tolist(), fpr) for lvl, fpr in LEVEL_FPR.items()}
    dga_spec = to_compact(booster.dump_model(), DGA_FEATURES)
    dga_spec["meta"] = {
        **common_meta,
        "version": MODEL_VERSION,
        "params": params,
        "rounds": DGA_ROUNDS,
        "thresholds": thresholds,
        "level_fpr": LEVEL_FPR,
        "validation": {"benign": len(val_benign)},
    }
    shas["dga"] = _dump(out_dir / "dga.json", dga_spec)
    progress(f"DGA thresholds {thresholds}")

    # DGA families: multiclass over families with enough training names
    progress("training the DGA family model")
    families = [f for f, v in sorted(sets.dga["train"].items()) if len(v) >= FAMILY_MIN_TRAIN]
    fam_parts: list[NameParts] = []
    fam_y: list[int] = []
    fam_w: list[float] = []
    for i, fam in enumerate(families):
        items = sets.dga["train"][fam]
        fam_parts.extend(items)
        fam_y.extend([i] * len(items))
        fam_w.extend([1.0 / math.sqrt(len(items))] * len(items))
    suffixes = sorted({p.suffix for p in fam_parts})
    FX = family_matrix(lex, fam_parts, suffixes)
    fparams = {**FAMILY_PARAMS, "num_class": len(families), "seed": seed}
    fbooster = fit(fparams, FX, np.asarray(fam_y), FAMILY_ROUNDS, np.asarray(fam_w))
    fam_spec = to_compact(fbooster.dump_model(), (*DGA_FEATURES, "suffix_code"))
    fam_spec["meta"] = {**common_meta, "version": MODEL_VERSION, "params": fparams, "rounds": FAMILY_ROUNDS,
                        "families": families, "suffixes": suffixes}  # fmt: skip
    shas["dga_family"] = _dump(out_dir / "dga_family.json", fam_spec)

    # Tunnel: per query
    progress("training the tunnel model")
    t_names, t_y = tunnel_rows(sets, "train")
    TX = tunnel_matrix(lex, splitter, t_names)
    tparams = {**DGA_PARAMS, "seed": seed}
    tbooster = fit(tparams, TX, np.asarray(t_y), TUNNEL_ROUNDS)
    v_names, v_y = tunnel_rows(sets, "val")
    v_scores = tbooster.predict(tunnel_matrix(lex, splitter, v_names))
    v_benign = [s for s, lab in zip(v_scores.tolist(), v_y, strict=True) if lab == 0]
    t_thresholds = {lvl: threshold_at(v_benign, fpr) for lvl, fpr in TUNNEL_LEVEL_FPR.items()}
    t_spec = to_compact(tbooster.dump_model(), TUNNEL_FEATURES)
    t_spec["meta"] = {**common_meta, "subdomain_list_sha256": synth.SUBDOMAIN_LIST_SHA256,
                      "version": MODEL_VERSION, "params": tparams, "rounds": TUNNEL_ROUNDS,
                      "thresholds": t_thresholds, "level_fpr": TUNNEL_LEVEL_FPR,
                      "validation": {"benign": len(v_benign)}}  # fmt: skip
    shas["tunnel"] = _dump(out_dir / "tunnel.json", t_spec)
    progress(f"tunnel thresholds {t_thresholds}")

    write_pins(out_dir / "pins.py", shas)
    return {"sha256": shas, "dga_thresholds": thresholds, "tunnel_thresholds": t_thresholds, "families": families}


def family_matrix(lex: Lexicon, parts: Sequence[NameParts], suffixes: Sequence[str]) -> Any:
    np = require("numpy", "ml")
    code = {s: float(i) for i, s in enumerate(suffixes)}
    base = dga_matrix(lex, parts)
    extra = np.array([[code.get(p.suffix, -1.0)] for p in parts], dtype=np.float64).reshape(len(parts), 1)
    return np.hstack([base, extra])


def tunnel_rows(sets: Sets, where: str) -> tuple[list[str], list[int]]:
    """Tunnel data rows plus synthetic benign hostnames; in training, each tunnel domain's names are
    weighted by repetition only (the fit never sees the domain, only the subdomain part)."""
    benign = sets.hostnames[where] + sets.wordlist_hostnames[where]
    names = [q for _, q in sets.data.tunnel[where]] + benign
    labels = [lab for lab, _ in sets.data.tunnel[where]] + [0] * len(benign)
    if where != "test":  # bare popular domains are the commonest benign query
        extra = [p.registrable for p in sets.data.benign[where][:2000]]
        names += extra
        labels += [0] * len(extra)
    return names, labels


def _sha(path: Path) -> str:
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()


def write_pins(path: Path, shas: dict[str, str]) -> None:
    """Rewrite pins.py with `shas`, keeping pins of files this run did not write (the character DGA
    model is trained off-line by scripts/train_dga_charcnn.py and installed by scripts/install_dga_cnn.py)."""
    if path.is_file():
        import re

        old = dict(re.findall(r'"(\w+)": "([0-9a-f]{64})"', path.read_text(encoding="utf-8")))
        shas = {**old, **shas}
    lines = [
        '"""sha256 of the shipped DNS model files. Generated by `tutela train dns`; do not edit by hand."""',
        "",
        "SHA256 = {",
        *(f'    "{k}": "{v}",' for k, v in sorted(shas.items())),
        "}",
        "",
    ]
    path.write_text("\n".join(lines), encoding="utf-8")
