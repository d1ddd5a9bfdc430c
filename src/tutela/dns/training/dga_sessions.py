"""How soon `dns.dga_session` finds an infected client, and how often it would accuse a clean one.

A DGA-infected client asks for many generated names; nearly all come back NXDOMAIN (unregistered). The
detector counts, per client, the distinct registrable domains answered NXDOMAIN whose DGA level is at
least `min_level`, and reports the client when the count reaches `threshold` within its window. So a
session of n distinct DGA names (in random order: the generators' outputs are pseudo-random) is found
within n answers with the hypergeometric probability of drawing at least `threshold` of the family's m
suspicious names among n of its N names. A clean client with n distinct NXDOMAIN domains in a window,
each suspicious with the held-out benign rate r, is accused with the binomial tail P(Bin(n, r) >=
threshold). Both are exact; no simulation, no random draws.

Families never seen in training are scored by the leave-group-out models (training/
dga_cnn_lofo_scores.json, written by scripts/train_dga_charcnn.py --dump-scores: every fold's thresholds
at a grid of validation FPRs, the test FPR at each, and the gated pair's logit for up to 3,000 names of
each left-out family). Seen families are scored by the shipped model on their test split.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

LOFO_SCORES_JSON = Path(__file__).with_name("dga_cnn_lofo_scores.json")
WITHIN = (10, 20, 50)  # NXDOMAIN answers of the infected client
MIN_NAMES = 20  # a family with fewer names in the data cannot stand for a session of 20 answers
CLEAN_DOMAINS = (10, 30, 100, 300)  # distinct NXDOMAIN domains of a clean client in one window


def detected_within(names: int, suspicious: int, threshold: int, n: int) -> float:
    """P(at least `threshold` suspicious among the first n of `names` distinct names, drawn without replacement)."""
    n = min(n, names)
    if suspicious < threshold or n < threshold:
        return 0.0
    total = math.comb(names, n)
    miss = sum(math.comb(suspicious, j) * math.comb(names - suspicious, n - j) for j in range(threshold))
    return 1.0 - miss / total


def answers_to_detect(names: int, suspicious: int, threshold: int) -> int | None:
    """The median number of NXDOMAIN answers before the report (None: the family never reaches it)."""
    if suspicious < threshold:
        return None
    lo, hi = threshold, names
    while lo < hi:  # detected_within is non-decreasing in n
        mid = (lo + hi) // 2
        if detected_within(names, suspicious, threshold, mid) >= 0.5:
            hi = mid
        else:
            lo = mid + 1
    return lo


def false_alarm(rate: float, threshold: int, n: int) -> float:
    """P(a clean client with n distinct NXDOMAIN domains in a window has `threshold` of them suspicious)."""
    return 1.0 - sum(math.comb(n, j) * rate**j * (1 - rate) ** (n - j) for j in range(min(threshold, n + 1)))


def load_lofo_scores(path: Path = LOFO_SCORES_JSON) -> dict[str, Any] | None:
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


def unseen_counts(doc: Mapping[str, Any], val_fpr: float) -> tuple[dict[str, tuple[int, int]], float]:
    """Per left-out family (names, names over its fold's threshold at `val_fpr`), and the folds' mean test FPR."""
    counts: dict[str, tuple[int, int]] = {}
    rates = []
    for fold in doc["folds"]:
        i = min(range(len(fold["val_fpr"])), key=lambda j: abs(fold["val_fpr"][j] - val_fpr))
        if abs(fold["val_fpr"][i] - val_fpr) > 1e-9:
            raise ValueError(f"validation FPR {val_fpr} is not in the dumped grid {fold['val_fpr']}")
        t = fold["threshold_logit"][i]
        rates.append(fold["test_fpr"][i])
        for fam in fold["families"]:
            logits = doc["logits"].get(fam, [])
            counts[fam] = (len(logits), sum(1 for x in logits if x > t))
    return counts, sum(rates) / len(rates)


def summary(counts: Mapping[str, tuple[int, int]], threshold: int, n: int = 20) -> tuple[float, int, int]:
    """Mean detection within n answers over families with >= MIN_NAMES names, families at >= 90%, families."""
    ps = [detected_within(names, m, threshold, n) for names, m in counts.values() if names >= MIN_NAMES]
    return (sum(ps) / len(ps) if ps else float("nan")), sum(1 for p in ps if p >= 0.9), len(ps)


def report(
    w: Callable[[str], None],
    pct: Callable[[float], str],
    *,
    threshold: int,
    min_level: str,
    window_s: float,
    level_fpr: Mapping[str, float],
    seen: Mapping[str, tuple[int, int]],
    seen_rate: float,
    unseen_doc: Mapping[str, Any] | None,
    splits_ok: bool,
    table_tpr_high: float,
    dictionary: Mapping[str, tuple[int, int]],
) -> dict[str, Any]:
    """Write the report section through `w`; return its figures for the JSON next to it."""
    out: dict[str, Any] = {"threshold": threshold, "min_level": min_level, "window_s": window_s}
    w("## DGA sessions: infected clients (`dns.dga_session`)")
    w("")
    w(f"Default configuration: a client is reported when {threshold} distinct registrable domains it asked for are")
    w(f"answered NXDOMAIN at DGA level {min_level.upper()} or above (validation FPR {pct(level_fpr[min_level])} per")
    w(f"name) within {window_s:g} s. Found within n = probability that the first n NXDOMAIN answers of the")
    w("infected client (its family's names in random order) include that many, assuming they fall within one")
    w("window (DGA malware asks for dozens of names a minute): exact hypergeometric tails")
    w("(`tutela/dns/training/dga_sessions.py`). A family's few registered names answer NOERROR and do not count;")
    w("leaving them in the pool, as here, is the pessimistic side. Not a per-name figure: the report names the")
    w("infected client; the per-name blocking targets are the tables above.")
    w("")
    if unseen_doc is not None:
        counts, rate = unseen_counts(unseen_doc, level_fpr[min_level])
        mean20, n90, n_fam = summary(counts, threshold)
        out["unseen"] = {"mean_within_20": mean20, "families_90": n90, "families": n_fam, "benign_rate": rate}
        check = "the same splits" if splits_ok else "**different splits**"
        w("**Families never seen in training** (leave-group-out models, 13 folds, as in the section above; a")
        w("re-run of the same folds on a GPU with `--dump-scores`; its mean share over HIGH on the dumped names,")
        w(f"at most 3,000 per family, is {pct(_mean_tpr_high(unseen_doc))} against {pct(table_tpr_high)} in the table")
        w(f"above on all names: GPU non-determinism and the cap; {check} as this report).")
        few = sorted(f for f, (names, _) in counts.items() if names < MIN_NAMES)
        w(f"Mean over the {n_fam} families with >= {MIN_NAMES} names in the data ({', '.join(few)} have fewer: listed,")
        w(f"not averaged): found within 20 answers **{pct(mean20)}**; families found >= 90% within 20:")
        w(f"**{n90} of {n_fam}**. Clean-client rate per name at this level (fold test splits): {pct(rate)}.")
        w("")
        rows = _family_table(w, pct, counts, threshold, min_level)
        out["unseen"]["families_rows"] = rows
        w("Other operating points (same folds; the default is marked):")
        w("")
        w("| level | threshold | unseen: mean within 20 | families >= 90% | clean client, 30 domains | 100 domains |")
        w("|---|---|---|---|---|---|")
        for level in ("low", "medium"):
            c, r = unseen_counts(unseen_doc, level_fpr[level])
            for k in (3, 4, 5, 6):
                m20, k90, nf = summary(c, k)
                mark = " (default)" if (level, k) == (min_level, threshold) else ""
                w(f"| {level.upper()}{mark} | {k} | {pct(m20)} | {k90} of {nf} | {_sci(false_alarm(r, k, 30))} | "
                  f"{_sci(false_alarm(r, k, 100))} |")  # fmt: skip
        w("")
    mean20, n90, n_fam = summary(seen, threshold)
    out["seen"] = {"mean_within_20": mean20, "families_90": n90, "families": n_fam, "benign_rate": seen_rate}
    w(f"**Families seen in training** (shipped model, their test split): found within 20 answers {pct(mean20)} on")
    w(f"average over the {n_fam} families with >= {MIN_NAMES} test names; {n90} of them >= 90%.")
    w("")
    if dictionary:
        w("**Dictionary names** never trained on (gozi-like, generated from gozi's word lists as in the")
        w("dictionary section; shipped model):")
        w("")
        _family_table(w, pct, dictionary, threshold, min_level)
        out["dictionary"] = {k: detected_within(n, m, threshold, 20) for k, (n, m) in dictionary.items()}
    w("**Clean clients.** Each distinct NXDOMAIN domain of a clean client is taken to be suspicious at the")
    w("held-out popular-domain rate (the shipped model's test split, and the leave-group-out folds' test")
    w("splits): the chance that a clean client with that many distinct NXDOMAIN domains in one window is")
    w("reported. Clean clients rarely see more than a few distinct NXDOMAIN domains in minutes; mail servers")
    w("checking sender domains do (spam domains look generated): list them in the detector's `ignore_clients`.")
    w("")
    w("| distinct NXDOMAIN domains in the window | " + " | ".join(str(n) for n in CLEAN_DOMAINS) + " |")
    w("|---|" + "---|" * len(CLEAN_DOMAINS))
    rates = [("shipped model", seen_rate)]
    if "unseen" in out:
        rates.append(("leave-group-out folds", out["unseen"]["benign_rate"]))
    for label, r in rates:
        w(
            f"| {label} (per name {pct(r)}) | "
            + " | ".join(_sci(false_alarm(r, threshold, n)) for n in CLEAN_DOMAINS)
            + " |"
        )
        out.setdefault("false_alarm", {})[label] = {n: false_alarm(r, threshold, n) for n in CLEAN_DOMAINS}
    w("")
    return out


def _family_table(
    w: Callable[[str], None],
    pct: Callable[[float], str],
    counts: Mapping[str, tuple[int, int]],
    threshold: int,
    level: str,
) -> dict[str, Any]:
    w(f"| set | names | over {level.upper()} | found within 10 | within 20 | within 50 | median answers |")
    w("|---|---|---|---|---|---|---|")
    rows = {}
    for key in sorted(counts):
        names, m = counts[key]
        if not names:
            continue
        within = [detected_within(names, m, threshold, n) for n in WITHIN]
        med = answers_to_detect(names, m, threshold)
        rows[key] = {"names": names, "suspicious": m, "within": dict(zip(WITHIN, within, strict=True)), "median": med}
        w(f"| {key} | {names} | {pct(m / names)} | " + " | ".join(pct(p) for p in within) + f" | {med or '-'} |")
    w("")
    return rows


def _mean_tpr_high(doc: Mapping[str, Any]) -> float:
    counts, _ = unseen_counts(doc, 0.0005)
    fr = [m / n for n, m in counts.values() if n]
    return sum(fr) / len(fr) if fr else float("nan")


def _sci(p: float) -> str:
    return "0" if p <= 0 else (f"{p:.1%}" if p >= 0.001 else f"{p:.0e}")


def seen_counts(fam_test: Mapping[str, Sequence[float]], t: float) -> dict[str, tuple[int, int]]:
    """Per family (names, names over threshold t) from the shipped model's test-split probabilities."""
    return {f: (len(s), sum(1 for x in s if x > t)) for f, s in fam_test.items()}
