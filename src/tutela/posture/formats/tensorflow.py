"""TensorFlow SavedModel (.pb) and GraphDef (.pb/.pbtxt): ops that touch files, run Python or
reach the network. Parsed from the wire format; TensorFlow is never imported."""

from __future__ import annotations

import re
from typing import Any

from tutela.core.findings import Severity
from tutela.posture.artifact import Artifact
from tutela.posture.formats.protobuf_wire import WireError, fields, text
from tutela.posture.issues import Issue, unparsable

# op -> (severity, why). Savers' own SaveV2/RestoreV2/MergeV2Checkpoints are in every SavedModel.
DANGEROUS_OPS: dict[str, tuple[Severity, str]] = {
    "PyFunc": (Severity.CRITICAL, "calls back into Python"),
    "PyFuncStateless": (Severity.CRITICAL, "calls back into Python"),
    "EagerPyFunc": (Severity.CRITICAL, "calls back into Python"),
    "ReadFile": (Severity.HIGH, "reads any file"),
    "WriteFile": (Severity.HIGH, "writes any file"),
    "MatchingFiles": (Severity.HIGH, "lists the file system"),
    "DeleteFile": (Severity.HIGH, "deletes files"),
    "ImmutableConst": (Severity.HIGH, "maps a file path into memory"),
    "WriteSummary": (Severity.HIGH, "writes files"),
    "CreateSummaryFileWriter": (Severity.HIGH, "writes files"),
    "CreateSummaryDbWriter": (Severity.HIGH, "writes files"),
    "WriteAudioSummary": (Severity.HIGH, "writes files"),
    "WriteRawProtoSummary": (Severity.HIGH, "writes files"),
    "PrintV2": (Severity.MEDIUM, "prints to a stream that may be a file"),
    "Save": (Severity.HIGH, "writes tensors to any path"),
    "SaveSlices": (Severity.HIGH, "writes tensors to any path"),
    "Restore": (Severity.MEDIUM, "reads tensors from any path"),
    "RestoreSlice": (Severity.MEDIUM, "reads tensors from any path"),
    "TFRecordDataset": (Severity.HIGH, "reads files"),
    "TFRecordDatasetV2": (Severity.HIGH, "reads files"),
    "FixedLengthRecordDataset": (Severity.HIGH, "reads files"),
    "FixedLengthRecordDatasetV2": (Severity.HIGH, "reads files"),
    "TextLineDataset": (Severity.HIGH, "reads files"),
    "FixedLengthRecordReader": (Severity.HIGH, "reads files"),
    "FixedLengthRecordReaderV2": (Severity.HIGH, "reads files"),
    "TextLineReader": (Severity.HIGH, "reads files"),
    "TextLineReaderV2": (Severity.HIGH, "reads files"),
    "WholeFileReader": (Severity.HIGH, "reads files"),
    "WholeFileReaderV2": (Severity.HIGH, "reads files"),
    "LMDBReader": (Severity.HIGH, "reads files"),
    "LMDBDataset": (Severity.HIGH, "reads files"),
    "ExperimentalLMDBDataset": (Severity.HIGH, "reads files"),
    "SqlDataset": (Severity.HIGH, "opens a database"),
    "ExperimentalSqlDataset": (Severity.HIGH, "opens a database"),
    "DebugIdentity": (Severity.HIGH, "sends tensors to debug URLs (file:// or grpc://)"),
    "DebugIdentityV2": (Severity.HIGH, "sends tensors to a debug dump directory"),
    "DebugNanCount": (Severity.HIGH, "sends tensors to debug URLs"),
    "DebugNumericSummary": (Severity.HIGH, "sends tensors to debug URLs"),
    "DebugNumericSummaryV2": (Severity.MEDIUM, "debug summaries"),
    "InitializeTableFromTextFile": (Severity.MEDIUM, "reads a vocabulary file"),
    "InitializeTableFromTextFileV2": (Severity.MEDIUM, "reads a vocabulary file"),
    "DecodeProtoV2": (Severity.MEDIUM, "may load a descriptor from a file"),
    "EncodeProto": (Severity.MEDIUM, "may load a descriptor from a file"),
    "LoadAndRemapMatrix": (Severity.MEDIUM, "reads a checkpoint path"),
    "GenerateVocabRemapping": (Severity.MEDIUM, "reads files"),
    "Dataset": (Severity.MEDIUM, "dataset op"),
    "SnapshotDataset": (Severity.HIGH, "writes files"),
    "SnapshotDatasetV2": (Severity.HIGH, "writes files"),
    "SaveDataset": (Severity.HIGH, "writes files"),
    "SaveDatasetV2": (Severity.HIGH, "writes files"),
    "LoadDataset": (Severity.HIGH, "reads files"),
    "CacheDatasetV2": (Severity.MEDIUM, "writes a cache file"),
    "RpcCall": (Severity.HIGH, "network call"),
    "RpcServer": (Severity.HIGH, "network server"),
    "RpcClient": (Severity.HIGH, "network client"),
    "Rpc": (Severity.HIGH, "network call"),
    "TryRpc": (Severity.HIGH, "network call"),
}
_PBTXT_OP = re.compile(rb'\bop\s*:\s*"([A-Za-z0-9_.>]+)"')
_MAX_DEPTH = 12


def scan_pb(a: Artifact) -> list[Issue]:
    ops: dict[str, int] = {}
    buf = a.data
    try:
        first = next(fields(buf, a.start, a.end), None)
        if first is None:
            return [unparsable("TensorFlow protobuf", "empty message", a.member)]
        if first[0] == 1 and first[1] == 0:  # SavedModel: saved_model_schema_version
            for num, wt, val in fields(buf, a.start, a.end):
                if num == 2 and wt == 2:  # meta_graphs
                    for n2, w2, v2 in fields(buf, *val):
                        if n2 == 2 and w2 == 2:  # graph_def
                            _graph(buf, v2, ops, 0)
        elif a.name.lower() == "keras_metadata.pb" or a.name.lower() == "fingerprint.pb":
            pass
        else:
            _graph(buf, (a.start, a.end), ops, 0)
    except WireError as exc:
        return [unparsable("TensorFlow protobuf", exc, a.member)]
    issues = _judge_ops(ops, a)
    if b'"class_name": "Lambda"' in bytes(a.data[a.start : a.end]):
        issues.append(
            Issue(
                "keras.lambda",
                Severity.CRITICAL,
                "code-execution",
                "Keras Lambda layer in SavedModel metadata: Python bytecode runs on load",
                a.member,
            )
        )
    return issues


def _graph(buf: Any, span: tuple[int, int], ops: dict[str, int], depth: int) -> None:
    if depth > _MAX_DEPTH:
        raise WireError("graph nesting too deep")
    for num, wt, val in fields(buf, *span):
        if wt != 2:
            continue
        if num == 1:  # node
            _node(buf, val, ops)
        elif num == 2:  # library
            for n2, w2, v2 in fields(buf, *val):
                if n2 == 1 and w2 == 2:  # function
                    for n3, w3, v3 in fields(buf, *v2):
                        if n3 == 3 and w3 == 2:  # node_def
                            _node(buf, v3, ops)


def _node(buf: Any, span: tuple[int, int], ops: dict[str, int]) -> None:
    for num, wt, val in fields(buf, *span):
        if num == 2 and wt == 2:
            op = text(buf, val)
            ops.setdefault(op, val[0])


def scan_pbtxt(a: Artifact) -> list[Issue]:
    ops: dict[str, int] = {}
    data = bytes(a.data[a.start : a.end])
    for m in _PBTXT_OP.finditer(data):
        ops.setdefault(m.group(1).decode("ascii", "replace"), a.start + m.start())
    return _judge_ops(ops, a)


def _judge_ops(ops: dict[str, int], a: Artifact) -> list[Issue]:
    out = []
    for op, at in ops.items():
        hit = DANGEROUS_OPS.get(op)
        if hit is None:
            continue
        severity, why = hit
        category = "code-execution" if severity == Severity.CRITICAL else "file-access"
        out.append(
            Issue(
                "tensorflow.dangerous-op", severity, category, f"TensorFlow op {op} {why}", a.member, at - a.start, op
            )
        )
    return out
