"""The symbolic pickle machine and the limits: semantics that the regressions rely on."""

from __future__ import annotations

import gzip
import pickle

from tests.posture import corpus
from tutela.core.findings import Action
from tutela.posture.artifact import Artifact
from tutela.posture.limits import ScanLimits
from tutela.posture.pickle_machine import PickleMachine, scan_stream
from tutela.posture.scanner import ModelScanner


def test_compat_pickle_mapping_only_below_protocol_3():
    r = PickleMachine(corpus.global_call("commands", "check_output", proto=2)).run()
    assert r.globals[0].mapped == ("subprocess", "check_output")
    r = PickleMachine(corpus.global_call("commands", "check_output", proto=4)).run()
    assert r.globals[0].mapped is None


def test_memo_resolves_stack_global():
    r = PickleMachine(corpus.memo_stack_global()).run()
    assert r.stopped and [g.dotted for g in r.globals] == ["os.system"]
    assert [e.kind for e in r.events] == ["import", "call"]


def test_inst_obj_newobj_build_are_calls():
    class Point:
        def __init__(self, x=0):
            self.x = x

    globals()["Point"] = Point
    Point.__module__, Point.__qualname__ = __name__, "Point"
    for proto in range(6):
        r = PickleMachine(pickle.dumps(Point(3), protocol=proto)).run()
        assert r.stopped and r.error is None, (proto, r.error)
        assert any(g.dotted.endswith("Point") for g in r.globals), proto


def test_stacked_pickles_are_all_followed():
    data = pickle.dumps({"a": 1}, 2) + corpus.global_call("os", "system")
    reports = scan_stream(data)
    assert len(reports) == 2 and reports[1].globals[0].dotted == "os.system"


def test_payload_bytes_are_skipped_without_copies():
    big = pickle.dumps({"w": b"\x00" * (8 << 20)}, protocol=5)
    r = PickleMachine(big).run()
    assert r.stopped and r.opcodes < 20


def test_time_budget_is_a_finding():
    data = b"\x80\x04]" + b"(" + b"K\x01" * 300_000 + b"e."
    v = ModelScanner(limits=ScanLimits(max_seconds=0.0001)).scan_bytes(data, "slow.pkl")
    assert v.action == Action.BLOCK
    assert {f.rule for f in v.findings} & {"scan.limit"}


def test_decompression_bomb_is_a_finding():
    bomb = gzip.compress(b"\x00" * (64 << 20))
    v = ModelScanner(limits=ScanLimits(max_ratio=10, ratio_floor_bytes=1 << 20)).scan_bytes(bomb, "m.pkl.gz")
    assert v.action == Action.BLOCK and any(f.rule == "archive.bomb" for f in v.findings)


def test_depth_limit_is_a_finding():
    data = corpus.global_call("os", "system")
    for i in range(8):
        data = corpus.zip_of({f"l{i}.zip" if i else "m.pkl": data})
    v = ModelScanner(limits=ScanLimits(max_depth=3)).scan_bytes(data, "deep.zip")
    assert v.action == Action.BLOCK and any(f.rule == "archive.too-deep" for f in v.findings)


def test_formats_benign_and_hostile():
    s = ModelScanner()
    assert s.scan_bytes(corpus.gguf(corpus.CHATML), "m.gguf").action == Action.ALLOW
    v = s.scan_bytes(corpus.gguf("{{ x|attr('\\x5f\\x5fclass\\x5f\\x5f') }}"), "m.gguf")
    assert v.action == Action.BLOCK
    v = s.scan_bytes(corpus.onnx_model(domain="ai.onnx.contrib"), "m.onnx")
    assert [f.rule for f in v.findings] == ["onnx.custom-domain"] and v.action == Action.ALERT
    assert s.scan_bytes(corpus.onnx_model(domain="com.evil.ops"), "m.onnx").action == Action.BLOCK
    assert s.scan_bytes(corpus.onnx_model(location="/etc/passwd"), "m.onnx").action == Action.BLOCK
    hole = corpus.safetensors({"a": ("F32", [1], (0, 4))}, b"\x00" * 4 + b"hidden payload")
    assert [f.rule for f in s.scan_bytes(hole, "m.safetensors").findings] == ["safetensors.unreferenced-bytes"]
    assert s.scan_bytes(b"\x80\x04garbage", "m.pkl").action == Action.BLOCK  # unparsable fails closed
    assert s.scan_bytes(b"\x00" * 64, "m.onnx").action == Action.BLOCK
    assert s.scan_bytes(Artifact.__doc__.encode(), "notes.txt").action == Action.ALLOW


def test_encrypted_archives_fail_closed():
    import io

    import py7zr

    s = ModelScanner()
    v = s.scan_bytes(corpus.malicious()["zip_encrypted_member.zip"], "m.zip")
    assert v.action == Action.BLOCK and [f.rule for f in v.findings if f.severity >= 3] == ["archive.encrypted"]
    buf = io.BytesIO()
    with py7zr.SevenZipFile(buf, "w", password="secret") as z:
        z.writestr(corpus.global_call("os", "system"), "model.pkl")
    v = s.scan_bytes(buf.getvalue(), "m.7z")
    assert v.action == Action.BLOCK and any(f.rule == "scan.unparsable" for f in v.findings)


def test_nested_payload_decoded_through_zlib_and_base64():
    import base64
    import struct
    import zlib

    su = corpus._su
    z = base64.b64encode(zlib.compress(corpus.global_call("subprocess", "check_output"))).decode()
    data = (
        b"\x80\x04"
        + su("pickle")
        + su("loads")
        + b"\x93"
        + su("zlib")
        + su("decompress")
        + b"\x93"
        + su("base64")
        + su("b64decode")
        + b"\x93"
        + b"X"
        + struct.pack("<I", len(z))
        + z.encode()
        + b"\x85R\x85R\x85R."
    )
    v = ModelScanner().scan_bytes(data, "m.pkl")
    inner = [f for f in v.findings if f.evidence.get("global") == "subprocess.check_output"]
    assert inner and "decoded payload" in inner[0].evidence["member"]
