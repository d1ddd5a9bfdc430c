"""One regression test per public bypass class of today's model scanners.

Each malicious sample is built in code (tests/posture/corpus.py) with a harmless payload and is
never loaded. Where the bypass relied on a parser refusing the file, the test also shows that
refusal (zipfile raising) so it cannot pass for the wrong reason.
"""

from __future__ import annotations

import io
import zipfile

import pytest

from tests.posture import corpus
from tutela.core.findings import Action, Severity


def _blocking(verdict, rule: str = "pickle.dangerous-global", glob: str | None = None, member: str | None = None):
    assert verdict.action == Action.BLOCK, verdict.reasons
    hits = [f for f in verdict.findings if f.rule == rule and f.severity >= Severity.HIGH]
    if glob is not None:
        hits = [f for f in hits if glob in (f.evidence.get("global") or "")]
    if member is not None:
        hits = [f for f in hits if member in (f.evidence.get("member") or "")]
    assert hits, [f.to_dict() for f in verdict.findings]
    return hits


def test_cve_2025_1716_pip_main_is_dangerous(scan):
    """picklescan did not list pip.main: a pickle could `pip install` an attacker's package."""
    _blocking(scan(corpus.global_call("pip", "main", b"install")), glob="pip.main")


def test_cve_2025_1889_pickle_under_any_member_name(scan):
    """picklescan only scanned members with pickle extensions; torch can load others."""
    data = corpus.torch_zip(corpus.state_dict_pickle(), extra={"extra/config.txt": corpus.global_call("os", "system")})
    _blocking(scan(data, "model.pt"), glob="os.system", member="extra/config.txt")


def test_cve_2025_1944_zip_local_name_differs_from_central(scan):
    data = corpus.zip_name_mismatch(corpus.torch_zip(corpus.global_call("os", "system")))
    with pytest.raises(zipfile.BadZipFile), zipfile.ZipFile(io.BytesIO(data)) as z:
        z.read("archive/data.pkl")
    v = scan(data, "model.pt")
    _blocking(v, glob="os.system", member="archive/data.pkl")
    assert any(f.rule == "archive.zip-inconsistent" for f in v.findings)


def test_cve_2025_1945_zip_flag_bits(scan):
    data = corpus.zip_flag_bits(corpus.torch_zip(corpus.global_call("os", "system")))
    with pytest.raises(RuntimeError, match="encrypted"), zipfile.ZipFile(io.BytesIO(data)) as z:
        z.read("archive/data.pkl")
    _blocking(scan(data, "model.pt"), glob="os.system")


def test_cve_2025_10155_plain_pickle_named_like_torch(scan):
    """A plain pickle with a .bin/.pt name: scanners that try the torch zip reader gave up."""
    for name in ("pytorch_model.bin", "model.pt", "model.pth"):
        _blocking(scan(corpus.global_call("os", "system"), name), glob="os.system")


def test_cve_2025_10156_zip_bad_crc(scan):
    data = corpus.zip_bad_crc(corpus.torch_zip(corpus.global_call("os", "system")))
    with pytest.raises(zipfile.BadZipFile), zipfile.ZipFile(io.BytesIO(data)) as z:
        z.read("archive/data.pkl")
    _blocking(scan(data, "model.pt"), glob="os.system")


def test_cve_2025_10157_submodules_of_dangerous_modules(scan):
    """picklescan matched `asyncio` exactly; its submodules run processes too."""
    for module, name in (
        ("asyncio.unix_events", "_UnixSubprocessTransport"),
        ("asyncio.subprocess", "create_subprocess_shell"),
        ("os.path", "exists"),
    ):
        _blocking(scan(corpus.global_call(module, name, proto=4)), glob=f"{module}.{name}")


def test_nullifai_broken_pickle_judged_by_what_ran_before_the_break(scan):
    data = corpus.broken_after_reduce()
    v = scan(data)
    _blocking(v, glob="os.system")
    _blocking(v, rule="pickle.malformed")


def test_nullifai_7z_packed_torch_model(scan):
    data = corpus.sevenzip("model.pt", corpus.torch_zip(corpus.broken_after_reduce()))
    _blocking(scan(data, "model.7z"), glob="os.system", member="model.pt!archive/data.pkl")


@pytest.mark.parametrize("name", ["model.ckpt", "weights.dat", "model", "state.npy_pickle", "notes.txt"])
def test_modelscan_skipped_extensions(scan, name):
    """ModelScan chose scanners by extension; content decides here (protocol 0 included)."""
    data = corpus.proto0_call("os", "system") if name == "notes.txt" else corpus.global_call("os", "system")
    _blocking(scan(data, name), glob="os.system")


def test_modelscan_savedmodel_gaps(scan):
    """ModelScan only knew ReadFile/WriteFile; ops in function libraries and .pbtxt were missed."""
    _blocking(scan(corpus.saved_model(["Placeholder", "MatchingFiles"]), "saved_model.pb"), "tensorflow.dangerous-op")
    v = scan(corpus.saved_model(["Placeholder"], ["PyFunc"]), "saved_model.pb")
    assert _blocking(v, "tensorflow.dangerous-op")[0].severity == Severity.CRITICAL
    _blocking(scan(b'node {\n  name: "w"\n  op: "ReadFile"\n}\n', "graph.pbtxt"), "tensorflow.dangerous-op")


def test_keras_cve_2025_1550_module_reference(scan):
    cfg = corpus.keras_config(
        [
            {
                **corpus.DENSE,
                "config": {
                    "units": 2,
                    "activation": {
                        "module": "builtins",
                        "class_name": "function",
                        "config": "exec",
                        "registered_name": None,
                    },
                },
            }
        ]
    )
    v = scan(corpus.keras_archive(cfg), "model.keras")
    assert _blocking(v, "keras.module-reference", glob="builtins.exec")[0].severity == Severity.CRITICAL


def test_keras_lambda_layer(scan):
    v = scan(corpus.malicious()["keras_lambda.keras"], "model.keras")
    _blocking(v, "keras.lambda")


def test_the_whole_malicious_corpus_is_blocked(scan):
    missed = [name for name, data in corpus.malicious().items() if scan(data, name).action != Action.BLOCK]
    assert missed == []


def test_the_benign_corpus_is_not_blocked(scan):
    blocked = {
        name: [f.rule for f in v.findings]
        for name, data in corpus.benign().items()
        if (v := scan(data, name)).action == Action.BLOCK
    }
    assert blocked == {}
