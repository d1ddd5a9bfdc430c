"""Train the character-level DGA model (`dns.dga` v2) and its leave-family-out twins, in one run.

Input: the JSON written by scripts/export_dga_splits.py (the exact splits of `tutela train/eval dns`).
Output (into OUT): dga_cnn.safetensors (float32 weights, the model served in numpy by
tutela/dns/charcnn.py), dga_cnn_lofo.json (leave-family-out results), dga_cnn_train.json (log, data hash).

Model: embedding (43 x E) -> parallel 1-D convolutions of widths 2..5 (F filters each, ReLU) -> max over
the valid positions of the name (padding never enters the max, so serving without padding is exact) ->
dense H (ReLU) -> one logit. Loss: binary cross-entropy with the LightGBM model's weights (DGA rows
1/sqrt(family size), scaled to the benign total). Fixed seeds; the epoch kept is the one with the best
validation TPR at 0.1% validation FPR (full model); leave-family-out models train a fixed number of epochs.

    python3 scripts/train_dga_charcnn.py SPLITS.json OUT [--quick] [--synthetic N --words WORDS.txt]
        [--configs cnn128] [--baseline-lofo] [--budget SECONDS]

--synthetic N adds N generic synthetic DGA names of each kind of scripts/dga_synth.py (kept in every
leave-family-out fold: they belong to no family); --baseline-lofo then also trains the leave-family-out
models without them, in the same run, for a side-by-side comparison (dga_cnn_lofo_baseline.json).
--budget stops starting new leave-family-out models after that many seconds (results so far are kept).

v4 options. --extra-kinds adds the synthetic kinds of dga_synth.EXTRA_KINDS; --suffix-swap adds, for every
real-family training name, a copy under a public suffix drawn from the benign training names (same family, so a
left-out family loses its copies too): the model must judge the label, not the family's TLD. --recipe-ab trains
the full model and every leave-out fold twice in the same run: with everything (v4, dga_cnn_lofo.json) and
without the v4 rows (the v3 recipe, dga_cnn_lofo_baseline.json; full model dga_cnn_v3recipe.safetensors).
--groups G leaves out G groups of families (family i of the sorted list in group i mod G) instead of one
family at a time: each family is tested by the model trained without its whole group (stricter, and G
folds instead of 38).

--folds-only skips the full models (the first of --configs is the fold configuration); --dump-scores FILE
(with --ensemble) writes every fold's thresholds at a grid of validation FPRs with the test FPR at each, and
the shipped pair's logit for each left-out family's names (at most 3,000 per family, rounded to 0.01): what
`tutela eval dns` needs to simulate infected clients of families never seen in training (dns.dga_session).
"""

from __future__ import annotations

import hashlib
import json
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789-._^$"  # must equal tutela/dns/training/charset.py
INDEX = {c: i + 2 for i, c in enumerate(ALPHABET)}
VOCAB = len(ALPHABET) + 2
MAX_CHARS = 80
WIDTHS = (2, 3, 4, 5)
SEED = 7
LEVEL_FPR = {"low": 0.01, "medium": 0.003, "high": 0.0005}
BAND = (0.0005, 0.001, 0.002, 0.003, 0.005, 0.01)
DUMP_FPR = (0.0005, 0.001, 0.002, 0.003, 0.005, 0.01, 0.02, 0.03, 0.05)
DUMP_NAMES = 3000


def encode(texts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
    X = np.zeros((len(texts), MAX_CHARS), dtype=np.int64)
    n = np.zeros(len(texts), dtype=np.int64)
    for i, t in enumerate(texts):
        ids = [INDEX.get(c, 1) for c in t[:MAX_CHARS]]
        X[i, : len(ids)] = ids
        n[i] = len(ids)
    return torch.from_numpy(X), torch.from_numpy(n)


class CharCNN(nn.Module):
    def __init__(self, emb: int, filters: int, hidden: int) -> None:
        super().__init__()
        self.emb = nn.Embedding(VOCAB, emb, padding_idx=0)
        self.convs = nn.ModuleList(nn.Conv1d(emb, filters, k) for k in WIDTHS)
        self.hidden = nn.Linear(filters * len(WIDTHS), hidden)
        self.out = nn.Linear(hidden, 1)
        self.drop = nn.Dropout(0.2)

    def forward(self, x: torch.Tensor, n: torch.Tensor) -> torch.Tensor:
        e = self.emb(x).transpose(1, 2)  # B, E, L
        pooled = []
        pos = torch.arange(x.shape[1], device=x.device)
        for k, conv in zip(WIDTHS, self.convs, strict=True):
            h = conv(e)  # B, F, L-k+1
            valid = pos[: h.shape[2]][None, :] <= (n[:, None] - k)
            h = h.masked_fill(~valid[:, None, :], -1e4)
            pooled.append(torch.relu(h.max(dim=2).values))
        z = self.drop(torch.cat(pooled, 1))
        return self.out(self.drop(torch.relu(self.hidden(z)))).squeeze(1)


def threshold_at(benign: np.ndarray, fpr: float) -> float:
    s = np.sort(benign)[::-1]
    allowed = math.floor(fpr * len(s))
    return float(s[allowed]) if allowed < len(s) else -1e9


def auc(neg: np.ndarray, pos: np.ndarray) -> float:
    from scipy.stats import rankdata

    r = rankdata(np.concatenate([neg, pos]))
    return float((r[len(neg) :].sum() - len(pos) * (len(pos) + 1) / 2) / (len(pos) * len(neg)))


def _opt(name: str, default: str | None = None) -> str | None:
    return sys.argv[sys.argv.index(name) + 1] if name in sys.argv else default


def main() -> None:
    splits_path, out = Path(sys.argv[1]), Path(sys.argv[2])
    quick = "--quick" in sys.argv
    n_synth = int(_opt("--synthetic", "0") or 0)
    budget = float(_opt("--budget", "1e9") or 1e9)
    only = (_opt("--configs", "") or "").split(",")
    n_groups = int(_opt("--groups", "0") or 0)
    ensemble = "--ensemble" in sys.argv  # stage 1 = v4 recipe, stage 2 = v3 recipe, gated at stage 1's LOW
    recipe_ab = "--recipe-ab" in sys.argv or ensemble
    select_band = "--select-band" in sys.argv
    out.mkdir(parents=True, exist_ok=True)
    raw = splits_path.read_bytes()
    doc = json.loads(raw)
    dev = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    torch.manual_seed(SEED)
    np.random.seed(SEED)
    t0 = time.time()
    log: dict = {"splits_sha256": hashlib.sha256(raw).hexdigest(), "data_sha256": doc["data_sha256"],
                 "device": str(dev), "torch": torch.__version__, "seed": SEED}  # fmt: skip
    if quick:  # a tiny CPU smoke test of the whole script
        doc["benign"] = {w: v[:800] for w, v in doc["benign"].items()}
        doc["dga"] = {w: {f: v[:60] for f, v in d.items()} for w, d in doc["dga"].items()}
        doc["dga_all"] = {f: v[:100] for f, v in list(doc["dga_all"].items())[:3]}
        doc["benign_test"] = doc["benign_test"][:800]
        doc["benign_test_judged"] = doc["benign_test_judged"][:800]

    fams = sorted(doc["dga"]["train"])
    b_tr = doc["benign"]["train"]
    tr_texts = list(b_tr)
    tr_y = [0.0] * len(b_tr)
    tr_fam = [-1] * len(b_tr)
    tr_w = [1.0] * len(b_tr)
    tr_v4 = [False] * len(b_tr)  # rows only the v4 recipe trains on
    for i, f in enumerate(fams):
        items = doc["dga"]["train"][f]
        tr_texts += items
        tr_y += [1.0] * len(items)
        tr_fam += [i] * len(items)
        tr_w += [1.0 / math.sqrt(len(items))] * len(items)
        tr_v4 += [False] * len(items)
    n_real = len(fams)
    if "--suffix-swap" in sys.argv:
        import random

        rng = random.Random(SEED)
        sufs = [t[1:-1].partition(".")[2] for t in b_tr]
        sufs = [x for x in sufs if x] or ["com"]
        for i, f in enumerate(fams):
            items = doc["dga"]["train"][f]
            copies = [f"^{t[1:-1].partition('.')[0]}.{rng.choice(sufs)}$" for t in items]
            tr_texts += copies
            tr_y += [1.0] * len(copies)
            tr_fam += [i] * len(copies)
            tr_w += [1.0 / math.sqrt(len(items))] * len(copies)
            tr_v4 += [True] * len(copies)
        log["suffix_swap"] = True
    if n_synth:
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        from dga_synth import EXTRA_KINDS, KINDS, generate, load_words

        kinds = KINDS + (EXTRA_KINDS if "--extra-kinds" in sys.argv else ())
        synth = generate(load_words(_opt("--words") or ""), b_tr, n_synth, SEED, kinds)
        log["synthetic"] = {k: len(v) for k, v in synth.items()}
        for j, (kind, items) in enumerate(sorted(synth.items())):
            tr_texts += items
            tr_y += [1.0] * len(items)
            tr_fam += [n_real + j] * len(items)  # never a real family: kept in every leave-family-out fold
            tr_w += [1.0 / math.sqrt(len(items))] * len(items)
            tr_v4 += [kind in EXTRA_KINDS] * len(items)
        print("synthetic", log["synthetic"], flush=True)
    Xtr, Ntr = encode(tr_texts)
    Ytr = torch.tensor(tr_y)
    Ftr = torch.tensor(tr_fam)
    Wtr = torch.tensor(tr_w, dtype=torch.float32)
    V4 = torch.tensor(tr_v4, dtype=torch.bool)
    Xtr, Ntr, Ytr, Ftr, Wtr, V4 = (t.to(dev) for t in (Xtr, Ntr, Ytr, Ftr, Wtr, V4))
    log["train_rows"] = {"all": len(tr_texts), "v4_only": int(V4.sum())}
    print("rows", log["train_rows"], flush=True)

    def weights(keep: torch.Tensor) -> torch.Tensor:
        w = Wtr.clone() * keep
        pos = (Ytr == 1) & keep
        w[pos] *= ((Ytr == 0) & keep).sum() / w[pos].sum()
        return w

    enc = {}

    def enc_dev(texts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        X, N = encode(texts)
        return X.to(dev), N.to(dev)

    enc["vb"] = enc_dev(doc["benign"]["val"])
    enc["tb"] = enc_dev(doc["benign_test"])
    tb_mask = np.asarray(doc["benign_test_judged"], dtype=bool)
    enc["vd"] = enc_dev([t for f in fams for t in doc["dga"]["val"].get(f, [])])

    @torch.no_grad()
    def score(model: nn.Module, XN: tuple[torch.Tensor, torch.Tensor]) -> np.ndarray:
        model.eval()
        X, N = XN
        out = [model(X[i : i + 8192], N[i : i + 8192]).float().cpu() for i in range(0, len(X), 8192)]
        model.train()
        return torch.cat(out).numpy() if out else np.zeros(0)

    def fit(cfg: dict, keep: torch.Tensor, epochs: int, select: bool) -> tuple[nn.Module, list]:
        g = torch.Generator(device="cpu").manual_seed(SEED)
        torch.manual_seed(SEED)
        model = CharCNN(cfg["emb"], cfg["filters"], cfg["hidden"]).to(dev)
        opt = torch.optim.AdamW(model.parameters(), lr=cfg["lr"], weight_decay=1e-4)
        w = weights(keep)
        idx_all = torch.nonzero(keep).squeeze(1).cpu()
        steps = epochs * math.ceil(len(idx_all) / cfg["batch"])
        sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg["lr"], total_steps=steps, pct_start=0.15)
        best, best_state, hist = -1.0, None, []
        for ep in range(epochs):
            perm = idx_all[torch.randperm(len(idx_all), generator=g)].to(dev)
            for i in range(0, len(perm), cfg["batch"]):
                b = perm[i : i + cfg["batch"]]
                logit = model(Xtr[b], Ntr[b])
                loss = (nn.functional.binary_cross_entropy_with_logits(logit, Ytr[b], reduction="none") * w[b]).sum()
                loss = loss / w[b].sum()
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                sched.step()
            if select:
                vb, vd = score(model, enc["vb"]), score(model, enc["vd"])
                t01 = threshold_at(vb, 0.001)
                m = float((vd > t01).mean())
                # --select-band: the mean validation TPR over FPR 0.05-1% (smoother than the 0.1% point alone)
                band = float(np.mean([(vd > threshold_at(vb, f)).mean() for f in BAND]))
                hist.append({"epoch": ep + 1, "val_tpr_at_fpr_0.1%": m, "val_auc": auc(vb, vd), "val_band": band,
                             "loss": float(loss.detach()), "t": round(time.time() - t0, 1)})  # fmt: skip
                print(hist[-1], flush=True)
                crit = band if select_band else m
                if crit >= best:
                    best = crit
                    best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        if best_state is not None:
            model.load_state_dict(best_state)
        return model, hist

    def combine(a: np.ndarray, b: np.ndarray, gate: float) -> np.ndarray:
        return np.where(a >= gate, (a + b) / 2, a)

    def full_models(best_cfg: dict, best_model: nn.Module) -> None:
        from safetensors.torch import save_file

        state = {k: v.detach().float().cpu().contiguous() for k, v in best_model.state_dict().items()}
        save_file(state, str(out / "dga_cnn.safetensors"), metadata={"config": json.dumps(best_cfg),
                  "widths": json.dumps(WIDTHS), "alphabet": ALPHABET, "max_chars": str(MAX_CHARS)})  # fmt: skip
        # held-out figures of the chosen model, as a cross-check of the numpy port (evaluate.py recomputes them)
        vb = score(best_model, enc["vb"])
        tb = np.where(tb_mask, score(best_model, enc["tb"]), -1e9)
        t01 = threshold_at(vb, 0.001)
        test_pos = np.concatenate([score(best_model, enc_dev(v)) for v in doc["dga"]["test"].values()])
        log["test_check"] = {"auc": auc(tb, test_pos), "tpr_at_val_fpr_0.1%": float((test_pos > t01).mean()),
                             "test_fpr": float((tb > t01).mean()),
                             "thresholds_logit": {k: threshold_at(vb, f) for k, f in LEVEL_FPR.items()}}  # fmt: skip
        print(log["test_check"], flush=True)

        def test_check(model: nn.Module) -> dict:
            vb = score(model, enc["vb"])
            tb = np.where(tb_mask, score(model, enc["tb"]), -1e9)
            t01 = threshold_at(vb, 0.001)
            test_pos = np.concatenate([score(model, enc_dev(v)) for v in doc["dga"]["test"].values()])
            return {"auc": auc(tb, test_pos), "tpr_at_val_fpr_0.1%": float((test_pos > t01).mean()),
                    "test_fpr": float((tb > t01).mean())}  # fmt: skip

        if recipe_ab:  # the full model of the v3 recipe, same run, same selection rule
            m3, hist3 = fit(best_cfg, ~V4, epochs, select=True)
            log["v3recipe"] = {"history": hist3, "test_check": test_check(m3)}
            state = {k: v.detach().float().cpu().contiguous() for k, v in m3.state_dict().items()}
            save_file(state, str(out / "dga_cnn_v3recipe.safetensors"), metadata={"config": json.dumps(best_cfg),
                      "widths": json.dumps(WIDTHS), "alphabet": ALPHABET, "max_chars": str(MAX_CHARS)})  # fmt: skip
            print("v3recipe", log["v3recipe"]["test_check"], flush=True)
            if ensemble:
                va, vb3 = score(best_model, enc["vb"]), score(m3, enc["vb"])
                gate = threshold_at(va, LEVEL_FPR["low"])
                vc = combine(va, vb3, gate)
                ta = score(best_model, enc["tb"])
                tcb = np.where(tb_mask, combine(ta, score(m3, enc["tb"]), gate), -1e9)
                tp = np.concatenate([combine(score(best_model, enc_dev(v)), score(m3, enc_dev(v)), gate)
                                     for v in doc["dga"]["test"].values()])  # fmt: skip
                t01c = threshold_at(vc, 0.001)
                log["ensemble"] = {"gate_logit": gate, "stage2_share_val_benign": float((va >= gate).mean()),
                                   "test_check": {"auc": auc(tcb, tp), "tpr_at_val_fpr_0.1%": float((tp > t01c).mean()),
                                                  "test_fpr": float((tcb > t01c).mean())}}  # fmt: skip
                print("ensemble", log["ensemble"], flush=True)

    everything = torch.ones(len(Ytr), dtype=torch.bool, device=dev)
    real_only = Ftr < n_real  # benign rows have family -1
    configs = [
        {"name": "cnn64", "emb": 24, "filters": 64, "hidden": 64, "lr": 3e-3, "batch": 512},
        {"name": "cnn128", "emb": 32, "filters": 128, "hidden": 64, "lr": 3e-3, "batch": 512},
    ]
    if only != [""]:
        configs = [c for c in configs if c["name"] in only]
    epochs = 1 if quick else 14
    results = {}
    best_cfg, best_val, best_model = None, -1.0, None
    folds_only = "--folds-only" in sys.argv
    if folds_only:
        best_cfg, configs = configs[0], []
    for cfg in configs:
        model, hist = fit(cfg, everything, epochs, select=True)
        v = max(h["val_tpr_at_fpr_0.1%"] for h in hist)
        results[cfg["name"]] = {"config": cfg, "history": hist}
        if v > best_val:
            best_cfg, best_val, best_model = cfg, v, model
    log["variants"] = results
    log["chosen"] = best_cfg
    print("chosen", best_cfg, best_val, flush=True)
    if not folds_only:
        full_models(best_cfg, best_model)

    # leave-family-out: same config, fixed epochs, trained without the family
    lofo_epochs = 1 if quick else 6

    runs = [(everything, out / "dga_cnn_lofo.json")]
    if recipe_ab:
        runs.append((~V4, out / "dga_cnn_lofo_baseline.json"))  # the same folds, v3 recipe
    elif n_synth and "--baseline-lofo" in sys.argv:
        runs.append((real_only, out / "dga_cnn_lofo_baseline.json"))  # the same folds without synthetic names
    results_lofo: list[dict] = [{} for _ in runs]
    ens_lofo: dict = {}
    log["lofo_epochs"] = lofo_epochs
    (out / "dga_cnn_train.json").write_text(json.dumps(log, indent=1, sort_keys=True))

    def synth_of(path: Path) -> dict | None:  # the baseline of --recipe-ab trains on the v3 kinds only
        syn = log.get("synthetic")
        if syn and recipe_ab and path.name != "dga_cnn_lofo.json":
            from dga_synth import KINDS

            return {k: v for k, v in syn.items() if k in KINDS}
        return syn

    all_fams = sorted(doc["dga_all"])
    if n_groups:
        folds = [[f for i, f in enumerate(all_fams) if i % n_groups == g] for g in range(n_groups)]
        folds = [f for f in folds if f]
    else:
        folds = [[f] for f in all_fams]
    log["folds"] = folds
    dump_path = _opt("--dump-scores")
    dump: dict = {"splits_sha256": log["splits_sha256"], "config": best_cfg, "epochs": lofo_epochs,
                  "ensemble": ensemble, "folds": [], "logits": {}}  # fmt: skip
    for fold in folds:  # fold by fold, both variants: a budget cut leaves pairs
        if time.time() - t0 > budget:
            print("budget reached: leave-family-out stopped before", fold, flush=True)
            break
        ks = torch.tensor([fams.index(f) for f in fold if f in fams] or [-2], device=dev)

        def fold_metrics(fold: list, vb: np.ndarray, tb: np.ndarray, fam_scores: dict, lofo: dict, name: str) -> None:
            th_high, th01 = threshold_at(vb, LEVEL_FPR["high"]), threshold_at(vb, 0.001)
            th05 = threshold_at(vb, 0.005)
            tb = np.where(tb_mask, tb, -1e9)
            for fam in fold:
                s = fam_scores[fam]
                lofo[fam] = {"n": len(s), "tpr_high": float((s > th_high).mean()),
                             "tpr_01": float((s > th01).mean()), "fpr_01": float((tb > th01).mean()),
                             "tpr_05": float((s > th05).mean()), "fpr_05": float((tb > th05).mean()),
                             "fpr_high": float((tb > th_high).mean())}  # fmt: skip
                if len(fold) > 1:
                    lofo[fam]["left_out_with"] = [f for f in fold if f != fam]
                print(name, fam, lofo[fam], round(time.time() - t0, 1), flush=True)

        fold_scores = []
        for (base, path), lofo in zip(runs, results_lofo, strict=True):
            model, _ = fit(best_cfg, base & ~torch.isin(Ftr, ks), lofo_epochs, select=False)
            vb, tb = score(model, enc["vb"]), score(model, enc["tb"])
            fs = {fam: score(model, enc_dev(doc["dga_all"][fam])) for fam in fold}
            fold_scores.append((vb, tb, fs))
            fold_metrics(fold, vb, tb, fs, lofo, path.name)
            path.write_text(json.dumps({"config": best_cfg, "epochs": lofo_epochs, "synthetic": synth_of(path),
                "splits_sha256": log["splits_sha256"], "groups": n_groups or None,
                "suffix_swap": bool(log.get("suffix_swap")) and path.name == "dga_cnn_lofo.json",
                "families": lofo}, indent=1, sort_keys=True))  # fmt: skip
        if ensemble:
            (va, ta, fa), (vb3, tb3, fb3) = fold_scores
            gate = threshold_at(va, LEVEL_FPR["low"])
            fc = {fam: combine(fa[fam], fb3[fam], gate) for fam in fold}
            fold_metrics(fold, combine(va, vb3, gate), combine(ta, tb3, gate), fc, ens_lofo, "ensemble")
            for fam in fold:
                ens_lofo[fam]["stage2_share_val_benign"] = float((va >= gate).mean())
            if dump_path:
                vc, tc = combine(va, vb3, gate), np.where(tb_mask, combine(ta, tb3, gate), -1e9)
                ths = [threshold_at(vc, f) for f in DUMP_FPR]
                dump["folds"].append({"families": fold, "val_fpr": list(DUMP_FPR), "threshold_logit": ths,
                                      "test_fpr": [float((tc > t).mean()) for t in ths],
                                      "benign_val": len(vc), "benign_test": int(tb_mask.sum())})  # fmt: skip
                for fam in fold:
                    dump["logits"][fam] = [round(float(x), 2) for x in fc[fam][:DUMP_NAMES]]
                Path(dump_path).write_text(json.dumps(dump, sort_keys=True, separators=(",", ":")))
            (out / "dga_cnn_lofo_ensemble.json").write_text(json.dumps({"config": best_cfg, "epochs": lofo_epochs,
                "synthetic": log.get("synthetic"), "splits_sha256": log["splits_sha256"], "groups": n_groups or None,
                "suffix_swap": bool(log.get("suffix_swap")), "ensemble": "stage 1 (v4 recipe) below its LOW "
                "threshold, else the mean logit of stage 1 and stage 2 (v3 recipe)", "families": ens_lofo},
                indent=1, sort_keys=True))  # fmt: skip
    log["seconds"] = round(time.time() - t0, 1)
    (out / "dga_cnn_train.json").write_text(json.dumps(log, indent=1, sort_keys=True))
    print("done", log["seconds"], flush=True)


if __name__ == "__main__":
    main()
