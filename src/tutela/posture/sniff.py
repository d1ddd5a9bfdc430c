"""What an artifact is, from its first bytes (and its name only where bytes cannot tell)."""

from __future__ import annotations

from tutela.posture.artifact import Artifact


def _words(text: str) -> list[str]:
    return text.split()


PICKLE_SUFFIXES = frozenset(
    _words(
        ".pkl .pickle .p .pk .pck .pcl .pt .pth .bin .ckpt .joblib .jbl .sav .dat .data .model .mdl .dill "
        ".cloudpickle .npy_pickle .pkl.z .pth.tar"
    )
)
MODEL_SUFFIXES = PICKLE_SUFFIXES | frozenset(
    _words(
        ".npy .npz .h5 .hdf5 .keras .pb .pbtxt .onnx .gguf .ggml .safetensors .tflite .mlmodel .7z .zip .tar "
        ".gz .bz2 .xz .tgz"
    )
)
# First bytes of a protocol 0/1 pickle (they have no PROTO opcode).
_P0_STARTS = frozenset(b"()]}cNIKJSVXUTFGlditp" + bytes([0x8C]))
PICKLE_FIRST = _P0_STARTS | {0x80}
_HDF5_SIG = b"\x89HDF\r\n\x1a\n"


def identify(a: Artifact) -> str:
    head = a.head(600)
    suffix = a.suffix
    name = a.name.lower()
    if head[:4] in (b"PK\x03\x04", b"PK\x05\x06", b"PK\x07\x08"):
        return "zip"
    if head[:1] == b"\x80" and len(head) > 1 and 2 <= head[1] <= 5:
        return "pickle"
    if head[:6] == b"\x93NUMPY":
        return "npy"
    if head[:8] == _HDF5_SIG or (a.size > 520 and head[512:520] == _HDF5_SIG):
        return "h5"
    if head[:4] == b"GGUF":
        return "gguf"
    if head[:6] == b"7z\xbc\xaf\x27\x1c":
        return "7z"
    if head[:2] == b"\x1f\x8b":
        return "gzip"
    if head[:3] == b"BZh":
        return "bz2"
    if head[:6] == b"\xfd7zXZ\x00":
        return "xz"
    if head[:4] == b"\x04\x22\x4d\x18":
        return "lz4"
    if len(head) >= 262 and head[257:262] == b"ustar":
        return "tar"
    if suffix == ".safetensors" or (len(head) >= 10 and head[8:10] in (b'{"', b"{}")):
        return "safetensors"
    if suffix == ".onnx":
        return "onnx"
    if suffix == ".pb":
        return "tf-pb"
    if suffix == ".pbtxt":
        return "tf-pbtxt"
    if name == "config.json" and b'"class_name"' in a.head(1 << 16):
        return "keras-config"
    if head[:1] == b"\x78" and len(head) > 1 and (head[0] * 256 + head[1]) % 31 == 0:
        return "zlib"
    if head[:3] == b"\x5d\x00\x00" and suffix in (".lzma", ".xz", ".joblib", ".pkl", ".z"):
        return "lzma"
    if suffix in PICKLE_SUFFIXES:
        return "pickle"
    if head[:1] and head[0] in _P0_STARTS:
        return "pickle?"
    return "unknown"
