"""Every global that picklescan, modelscan or fickling treats as dangerous is at least HIGH for tutela.

The peers' lists are dumped from their installed source by bench/peer_unsafe_globals.py into
peer_unsafe_globals.json (versions inside). "*" means the whole module: tutela must judge an
arbitrary name in it HIGH or worse, and every name of it that tutela allows must be a documented,
deliberate exception below (a name benign model files really contain, whose danger tutela judges
otherwise).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tutela.core.findings import Severity
from tutela.posture.imports_policy import ALLOWED, judge_global

PEERS = json.loads((Path(__file__).parent / "peer_unsafe_globals.json").read_text())

# (module, name) that a peer flags and tutela allows, and why that is not a gap.
EXCEPTIONS = {
    ("functools", "partial"): "only binds arguments; the callable it wraps is itself a global judged on its own, "
    "and calling the result is a REDUCE on a computed callable (pickle.indirect-call, HIGH)",
    ("_functools", "partial"): "as functools.partial",
    ("uuid", "UUID"): "a value type (sklearn/pandas pickles); uuid's command helpers stay CRITICAL",
    ("uuid", "SafeUUID"): "an enum of uuid.UUID",
    ("types", "SimpleNamespace"): "a plain attribute container; types.CodeType/FunctionType stay CRITICAL",
    ("joblib.numpy_pickle", "NumpyArrayWrapper"): "in every joblib file with arrays; the array bytes that follow "
    "are parsed as NumPy data, object arrays as nested pickles",
    ("joblib.numpy_pickle", "NDArrayWrapper"): "as NumpyArrayWrapper (old joblib)",
    ("torch.storage", "_load_from_bytes"): "in every pickled tensor (pickle.dumps(tensor)); its argument is a "
    "whole torch file that tutela scans as a nested payload, where anything dangerous is found",
    ("torch.jit._pickle", "build_intlist"): "TorchScript archives' list builders: they build containers only",
}
for _name in ("boollist", "complexlist", "doublelist", "tensorlist", "tensor_from_id"):
    EXCEPTIONS[("torch.jit._pickle", f"build_{_name}")] = EXCEPTIONS[("torch.jit._pickle", "build_intlist")]
EXCEPTIONS[("torch.jit._pickle", "restore_type_tag")] = "TorchScript's type tag on a container it built"
# fickling's builtins rule is "everything but SAFE_BUILTINS"; these constants and (Python 2) types are
# allowed too: they construct values and call nothing.
for _module, _names in (
    ("builtins", "Ellipsis NotImplemented bytearray"),
    ("__builtin__", "xrange unicode long basestring bytearray"),
):
    for _name in _names.split():
        EXCEPTIONS[(_module, _name)] = "a constant or a type constructor (calls nothing)"
BUILTIN_MODULES = ("builtins", "__builtin__", "__builtins__")


def _peer_entries() -> list[tuple[str, str, str]]:
    out = []
    for peer in ("picklescan", "modelscan", "fickling"):
        for module, names in PEERS[peer].items():
            for name in names:
                out.append((peer, module, name))
    return out


def _probe(module: str) -> str:
    """A name in a wildcard module that no allow-list mentions."""
    return "tutela_probe_attr"


@pytest.mark.parametrize(("peer", "module", "name"), _peer_entries())
def test_peer_dangerous_global_is_blocking_for_tutela(peer: str, module: str, name: str) -> None:
    probe = _probe(module) if name == "*" else name
    if (module, probe) in EXCEPTIONS:
        return
    j = judge_global(module, probe)
    assert j.severity is not None and j.severity >= Severity.HIGH, f"{peer} flags {module}.{probe}; tutela: {j}"


@pytest.mark.parametrize(("peer", "module"), [(p, m) for p, m, n in _peer_entries() if n == "*"])
def test_allowed_names_in_peer_wildcard_modules_are_documented(peer: str, module: str) -> None:
    allowed_here = {(m, n) for m, n in ALLOWED if m == module or m.startswith(module + ".")}
    if peer == "fickling" and module in BUILTIN_MODULES:  # fickling allows its SAFE_BUILTINS there
        allowed_here = {(m, n) for m, n in allowed_here if n not in PEERS["fickling_safe_builtins"]}
    undocumented = allowed_here - set(EXCEPTIONS)
    assert not undocumented, f"{peer} flags all of {module}; tutela allows {sorted(undocumented)} without a reason"


def test_builtins_outside_fickling_safe_list_are_blocking() -> None:
    """fickling allows only its SAFE_BUILTINS; every other builtin name is at least HIGH for tutela."""
    import builtins

    safe = set(PEERS["fickling_safe_builtins"])
    for name in dir(builtins):
        if name in safe or (("builtins", name) in ALLOWED):
            continue
        for module in ("builtins", "__builtin__", "__builtins__"):
            j = judge_global(module, name)
            assert j.severity is not None and j.severity >= Severity.HIGH, f"{module}.{name}: {j}"


def test_exceptions_are_still_allowed() -> None:
    """The exception list stays honest: each entry is really allowed (else delete it)."""
    for module, name in EXCEPTIONS:
        assert judge_global(module, name).severity is None, (module, name)
