"""The symbolic values of the pickle machine: what a stream would build, without building it.

Imports are `GlobalRef`s, calls are `Call`s, payloads are zero-copy `Blob`s, containers keep their
first items for inspection and count the rest. Nothing here imports or calls anything.
"""

from __future__ import annotations

from _compat_pickle import IMPORT_MAPPING, NAME_MAPPING
from dataclasses import dataclass, field
from typing import Any

MAX_STR = 4096  # longer strings stay symbolic (never a module or attribute name)
KEEP_ITEMS = 64  # items kept per list/dict/set for inspection; the rest are counted
JOBLIB_WRAPPERS = frozenset(
    {
        ("joblib.numpy_pickle", "NumpyArrayWrapper"),
        ("sklearn.externals.joblib.numpy_pickle", "NumpyArrayWrapper"),
    }
)


class PickleError(Exception):
    """The stream cannot be followed further (what pickle.load would also fail on)."""


@dataclass(slots=True, eq=False)
class GlobalRef:
    module: str
    name: str
    offset: int
    proto: int
    mapped: tuple[str, str] | None = None  # the Python 3 name _compat_pickle maps it to

    @property
    def dotted(self) -> str:
        return f"{self.module}.{self.name}"


@dataclass(slots=True, eq=False)
class Call:
    """The result of calling `func` (REDUCE, NEWOBJ, INST, OBJ). `state` is set by BUILD."""

    func: Any
    args: Any
    offset: int
    kind: str
    state: Any = None


@dataclass(slots=True, eq=False)
class Blob:
    """A bytes or long-string payload: a zero-copy window, decoded only on demand."""

    kind: str  # "bytes" | "str"
    view: memoryview
    offset: int


@dataclass(slots=True, eq=False)
class SymList:
    items: list[Any] = field(default_factory=list)
    count: int = 0

    def add(self, values: list[Any]) -> None:
        room = KEEP_ITEMS - len(self.items)
        if room > 0:
            self.items.extend(values[:room])
        self.count += len(values)


@dataclass(slots=True, eq=False)
class SymDict:
    items: list[tuple[Any, Any]] = field(default_factory=list)
    count: int = 0

    def add(self, pairs: list[tuple[Any, Any]]) -> None:
        room = KEEP_ITEMS * 4 - len(self.items)
        if room > 0:
            self.items.extend(pairs[:room])
        self.count += len(pairs)

    def get(self, key: str) -> Any:
        for k, v in self.items:
            if k == key:
                return v
        return None

    def has(self, key: str) -> bool:
        return any(k == key for k, _ in self.items)


class Opaque:
    __slots__ = ("what",)

    def __init__(self, what: str) -> None:
        self.what = what

    def __repr__(self) -> str:
        return f"<{self.what}>"


FLOAT = Opaque("float")
BIGINT = Opaque("int")
PERSISTENT = Opaque("persistent")
BUFFER = Opaque("buffer")
EXT = Opaque("extension")


@dataclass(slots=True)
class Event:
    """Something the unpickler would do that runs code: import, call, setstate, extension."""

    kind: str  # "import" | "call" | "build" | "extension" | "dynamic-global" | "indirect-call" | "build-global"
    offset: int
    ref: GlobalRef | None = None
    detail: str = ""


@dataclass(slots=True)
class Nested:
    """A payload that would be deserialised again (pickle.loads(b"..."), object arrays)."""

    offset: int
    start: int  # absolute offsets in the machine's buffer, or in `data` when set
    end: int
    how: str
    data: bytes | None = None
    strict: bool = True


@dataclass(slots=True)
class PickleReport:
    start: int
    end: int = 0  # offset just after STOP (or where the machine stopped)
    opcodes: int = 0
    proto: int = 0
    events: list[Event] = field(default_factory=list)
    nested: list[Nested] = field(default_factory=list)
    error: str | None = None
    error_offset: int | None = None
    stopped: bool = False  # reached STOP

    @property
    def globals(self) -> list[GlobalRef]:
        seen: dict[tuple[str, str], GlobalRef] = {}
        for e in self.events:
            if e.ref is not None and e.kind == "import":
                seen.setdefault((e.ref.module, e.ref.name), e.ref)
        return list(seen.values())


def map_py2(module: str, name: str) -> tuple[str, str] | None:
    if (module, name) in NAME_MAPPING:
        return NAME_MAPPING[(module, name)]
    if module in IMPORT_MAPPING:
        return IMPORT_MAPPING[module], name
    return None


DESERIALISERS = frozenset(
    {
        "pickle.loads",
        "_pickle.loads",
        "cPickle.loads",
        "dill.loads",
        "dill._dill.loads",
        "cloudpickle.loads",
        "torch.storage._load_from_bytes",
        "numpy.loads",
        "joblib.load",
        "pickle._loads",
    }
)
DECODERS = frozenset(
    {
        "base64.b64decode",
        "base64.standard_b64decode",
        "base64.urlsafe_b64decode",
        "binascii.a2b_base64",
        "binascii.unhexlify",
        "binascii.a2b_hex",
        "builtins.bytes.fromhex",
        "zlib.decompress",
        "codecs.decode",
        "_codecs.decode",
    }
)
MAX_DECODED = 64 << 20


def _decode(func: str, raw: bytes, how: Any) -> bytes | None:
    import base64
    import binascii
    import zlib

    try:
        if func == "zlib.decompress" or (func.endswith("codecs.decode") and how in ("zlib", "zlib_codec")):
            d = zlib.decompressobj()
            out = d.decompress(raw, MAX_DECODED)
            return out if d.eof else None
        if "hex" in func or (func.endswith("codecs.decode") and how in ("hex", "hex_codec")):
            return binascii.unhexlify(raw.strip())
        if "64" in func or (func.endswith("codecs.decode") and how in ("base64", "base64_codec")):
            return base64.b64decode(raw, altchars=b"-_" if "urlsafe" in func else None)
    except (binascii.Error, ValueError, zlib.error):
        return None
    return None


def decode_arg(value: Any, depth: int = 0) -> bytes | None:
    """Bytes that a deserialiser call would receive, when they are literal or decoded from a literal
    (base64, hex, zlib, codecs.decode), up to a few levels deep."""
    if isinstance(value, Blob):
        return value.view.tobytes()
    if isinstance(value, bytes):
        return value
    if (
        depth < 4
        and isinstance(value, Call)
        and isinstance(value.func, GlobalRef)
        and value.func.dotted in DECODERS
        and isinstance(value.args, tuple)
        and value.args
    ):
        inner = value.args[0]
        raw = inner.encode("latin-1", "replace") if isinstance(inner, str) else decode_arg(inner, depth + 1)
        if raw is None:
            return None
        how = value.args[1] if len(value.args) > 1 else None
        return _decode(value.func.dotted, raw, how)
    return None


def dtype_info(dtype: Any) -> tuple[int, bool] | None:
    """(itemsize, hasobject) of a symbolic numpy.dtype(...) call with its BUILD state."""
    if not isinstance(dtype, Call) or not isinstance(dtype.func, GlobalRef) or dtype.func.name != "dtype":
        return None
    spec = dtype.args[0] if isinstance(dtype.args, tuple) and dtype.args else None
    if not isinstance(spec, str) or not spec:
        return None
    state = dtype.state if isinstance(dtype.state, tuple) else ()
    kind = spec.lstrip("<>|=")[:1]
    digits = "".join(ch for ch in spec if ch.isdigit())
    itemsize = int(digits) if digits else 0
    if kind == "U":
        itemsize *= 4
    if len(state) >= 6 and isinstance(state[5], int) and state[5] > 0:
        itemsize = state[5]  # elsize of flexible and structured types
    flags = state[7] if len(state) >= 8 and isinstance(state[7], int) else 0
    hasobject = kind == "O" or bool(flags & 1)
    return itemsize, hasobject
