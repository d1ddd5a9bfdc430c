"""A symbolic pickle machine for protocols 0-5 that never unpickles.

It walks the opcodes the way `pickle.Unpickler` would, but every object stays symbolic: a
GLOBAL becomes a `GlobalRef` (what `find_class` would import), REDUCE/NEWOBJ/INST/OBJ become
`Call`s, BUILD records whose `__setstate__` would run. Memo, marks and stack are followed, so
STACK_GLOBAL built from memoised strings resolves. Python 2 names are mapped the way Python 3
maps them on load (`_compat_pickle`). A stream that breaks is judged by what would already
have executed before the break (`error` holds where and why).

Payloads (BINBYTES, BINUNICODE, ...) are skipped as zero-copy windows, so the cost grows with
the number of opcodes, not with the size of the data they carry.
"""

from __future__ import annotations

import codecs
import struct
from _compat_pickle import IMPORT_MAPPING, NAME_MAPPING
from dataclasses import dataclass, field
from typing import Any

from tutela.posture.limits import Deadline

_U16 = struct.Struct("<H").unpack_from
_U32 = struct.Struct("<I").unpack_from
_I32 = struct.Struct("<i").unpack_from
_U64 = struct.Struct("<Q").unpack_from

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


class _Opaque:
    __slots__ = ("what",)

    def __init__(self, what: str) -> None:
        self.what = what

    def __repr__(self) -> str:
        return f"<{self.what}>"


FLOAT = _Opaque("float")
BIGINT = _Opaque("int")
PERSISTENT = _Opaque("persistent")
BUFFER = _Opaque("buffer")
EXT = _Opaque("extension")


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


def _map_py2(module: str, name: str) -> tuple[str, str] | None:
    if (module, name) in NAME_MAPPING:
        return NAME_MAPPING[(module, name)]
    if module in IMPORT_MAPPING:
        return IMPORT_MAPPING[module], name
    return None


_DESERIALISERS = frozenset(
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
_DECODERS = frozenset(
    {"base64.b64decode", "base64.standard_b64decode", "base64.urlsafe_b64decode", "binascii.a2b_base64"}
)


def _decode_arg(value: Any) -> bytes | None:
    """Bytes that a deserialiser call would receive, when they are literal (or base64 of a literal)."""
    if isinstance(value, Blob):
        return value.view.tobytes()
    if isinstance(value, bytes):
        return value
    if isinstance(value, Call) and isinstance(value.func, GlobalRef) and value.func.dotted in _DECODERS:
        inner = value.args[0] if isinstance(value.args, tuple) and value.args else None
        raw = inner.encode("latin-1", "replace") if isinstance(inner, str) else _decode_arg(inner)
        if raw is None:
            return None
        import base64
        import binascii

        try:
            return base64.b64decode(raw, altchars=b"-_" if "urlsafe" in value.func.name else None)
        except (binascii.Error, ValueError):
            return None
    return None


def _dtype_info(dtype: Any) -> tuple[int, bool] | None:
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


class PickleMachine:
    """Follows one pickle stream in `buf[start:end]` (absolute offsets are reported)."""

    def __init__(
        self,
        buf: Any,
        start: int = 0,
        end: int | None = None,
        *,
        deadline: Deadline | None = None,
        max_stack: int = 5_000_000,
        joblib: bool = True,
    ) -> None:
        self.buf = buf
        self.start = start
        self.end = len(buf) if end is None else end
        self.deadline = deadline
        self.max_stack = max_stack
        self.joblib = joblib

    # ------------------------------------------------------------------ helpers
    def _line(self, pos: int) -> tuple[bytes, int]:
        nl = self.buf.find(b"\n", pos, self.end)
        if nl < 0:
            raise PickleError("line not terminated")
        return bytes(self.buf[pos:nl]), nl + 1

    def run(self) -> PickleReport:
        report = PickleReport(start=self.start)
        try:
            self._run(report)
        except PickleError as exc:
            report.error = str(exc)
        except (IndexError, struct.error) as exc:
            report.error = f"truncated or malformed stream ({type(exc).__name__})"
        except RecursionError:
            report.error = "nesting too deep"
        return report

    def _run(self, r: PickleReport) -> None:
        buf = self.buf
        end = self.end
        mv = memoryview(buf)
        pos = self.start
        stack: list[Any] = []
        push = stack.append
        marks: list[int] = []
        memo: dict[int, Any] = {}
        events = r.events
        proto = 0
        n = 0
        max_stack = self.max_stack
        deadline = self.deadline

        def pop_mark() -> list[Any]:
            if not marks:
                raise PickleError("MARK expected")
            k = marks.pop()
            items = stack[k:]
            del stack[k:]
            return items

        def pop() -> Any:
            if not stack:
                raise PickleError("stack underflow")
            return stack.pop()

        def make_global(module: str, name: str, at: int) -> GlobalRef:
            mapped = _map_py2(module, name) if proto < 3 else None
            ref = GlobalRef(module, name, at, proto, mapped)
            events.append(Event("import", at, ref))
            return ref

        def call(func: Any, args: Any, at: int, kind: str) -> Call:
            if isinstance(func, GlobalRef):
                events.append(Event("call", at, func, kind))
                if func.dotted in _DESERIALISERS or (func.mapped and ".".join(func.mapped) in _DESERIALISERS):
                    arg = args[0] if isinstance(args, tuple) and args else None
                    if isinstance(arg, Blob):
                        base = arg.view.obj is buf
                        s = arg.offset
                        r.nested.append(Nested(at, s, s + arg.view.nbytes, f"{func.dotted} payload", None))
                        if not base:
                            r.nested[-1].data = arg.view.tobytes()
                    else:
                        raw = _decode_arg(arg)
                        if raw is not None:
                            r.nested.append(Nested(at, 0, len(raw), f"{func.dotted} of decoded payload", raw))
            else:
                what = type(func).__name__ if not isinstance(func, _Opaque) else func.what
                events.append(Event("indirect-call", at, None, f"{kind} of a computed callable ({what})"))
            return Call(func, args, at, kind)

        at = pos
        try:
            while True:
                if pos >= end:
                    r.end, r.opcodes = pos, n
                    raise PickleError("stream ends without STOP")
                at = pos
                op = buf[pos]
                pos += 1
                n += 1
                if not n & 0xFFFF:
                    if deadline is not None:
                        deadline.check()
                    if len(stack) + len(memo) > max_stack:
                        raise PickleError(f"more than {max_stack} stack and memo entries")
                # Ordered roughly by frequency in real model files.
                if op == 0x47:  # BINFLOAT
                    pos += 8
                    push(FLOAT)
                elif op == 0x94:  # MEMOIZE
                    if not stack:
                        raise PickleError("MEMOIZE on empty stack")
                    memo[len(memo)] = stack[-1]
                elif op == 0x71:  # BINPUT
                    memo[buf[pos]] = stack[-1] if stack else None
                    pos += 1
                elif op == 0x68:  # BINGET
                    key = buf[pos]
                    pos += 1
                    if key not in memo:
                        raise PickleError(f"memo key {key} missing")
                    push(memo[key])
                elif op == 0x72:  # LONG_BINPUT
                    memo[_U32(buf, pos)[0]] = stack[-1] if stack else None
                    pos += 4
                elif op == 0x6A:  # LONG_BINGET
                    key = _U32(buf, pos)[0]
                    pos += 4
                    if key not in memo:
                        raise PickleError(f"memo key {key} missing")
                    push(memo[key])
                elif op == 0x4B:  # BININT1
                    push(buf[pos])
                    pos += 1
                elif op == 0x4D:  # BININT2
                    push(_U16(buf, pos)[0])
                    pos += 2
                elif op == 0x4A:  # BININT
                    push(_I32(buf, pos)[0])
                    pos += 4
                elif op == 0x4E:  # NONE
                    push(None)
                elif op == 0x88:  # NEWTRUE
                    push(True)
                elif op == 0x89:  # NEWFALSE
                    push(False)
                elif op == 0x8C or op == 0x58 or op == 0x8D:  # SHORT_BINUNICODE, BINUNICODE, BINUNICODE8
                    if op == 0x8C:
                        size = buf[pos]
                        pos += 1
                    elif op == 0x58:
                        size = _U32(buf, pos)[0]
                        pos += 4
                    else:
                        size = _U64(buf, pos)[0]
                        pos += 8
                    if pos + size > end:
                        raise PickleError("string runs past the end of the stream")
                    if size <= MAX_STR:
                        try:
                            push(bytes(mv[pos : pos + size]).decode("utf-8", "surrogatepass"))
                        except UnicodeDecodeError:
                            raise PickleError("invalid UTF-8 in string") from None
                    else:
                        push(Blob("str", mv[pos : pos + size], pos))
                    pos += size
                elif op == 0x28:  # MARK
                    marks.append(len(stack))
                elif op == 0x85:  # TUPLE1
                    push((pop(),))
                elif op == 0x86:  # TUPLE2
                    b = pop()
                    a = pop()
                    push((a, b))
                elif op == 0x87:  # TUPLE3
                    c = pop()
                    b = pop()
                    a = pop()
                    push((a, b, c))
                elif op == 0x74:  # TUPLE
                    push(tuple(pop_mark()))
                elif op == 0x29:  # EMPTY_TUPLE
                    push(())
                elif op == 0x52:  # REDUCE
                    args = pop()
                    func = pop()
                    push(call(func, args, at, "reduce"))
                elif op == 0x62:  # BUILD
                    state = pop()
                    if not stack:
                        raise PickleError("BUILD on empty stack")
                    obj = stack[-1]
                    if isinstance(obj, GlobalRef):
                        events.append(Event("build-global", at, obj, "BUILD sets attributes on an imported object"))
                    elif isinstance(obj, Call):
                        obj.state = state
                        if isinstance(obj.func, GlobalRef):
                            events.append(Event("build", at, obj.func))
                            if self.joblib and (obj.func.module, obj.func.name) in JOBLIB_WRAPPERS:
                                pos = self._joblib_array(r, stack, obj, pos)
                elif op == 0x42 or op == 0x43 or op == 0x8E or op == 0x96:  # BINBYTES, SHORT_BINBYTES, 8, BYTEARRAY8
                    if op == 0x43:
                        size = buf[pos]
                        pos += 1
                    elif op == 0x42:
                        size = _U32(buf, pos)[0]
                        pos += 4
                    else:
                        size = _U64(buf, pos)[0]
                        pos += 8
                    if pos + size > end:
                        raise PickleError("bytes run past the end of the stream")
                    blob = Blob("bytes", mv[pos : pos + size], pos)
                    if size >= 16 and buf[pos] == 0x80 and 2 <= buf[pos + 1] <= 5 and buf[pos + size - 1] == 0x2E:
                        r.nested.append(Nested(at, pos, pos + size, "pickle inside a bytes payload", strict=False))
                    push(blob)
                    pos += size
                elif op == 0x7D:  # EMPTY_DICT
                    push(SymDict())
                elif op == 0x5D:  # EMPTY_LIST
                    push(SymList())
                elif op == 0x75:  # SETITEMS
                    items = pop_mark()
                    if not stack:
                        raise PickleError("SETITEMS on empty stack")
                    target = stack[-1]
                    if len(items) % 2:
                        raise PickleError("odd number of items for SETITEMS")
                    if isinstance(target, SymDict):
                        target.add(list(zip(items[::2], items[1::2], strict=True)))
                    else:
                        self._container_op(events, target, at, "__setitem__")
                elif op == 0x73:  # SETITEM
                    v = pop()
                    k = pop()
                    if not stack:
                        raise PickleError("SETITEM on empty stack")
                    target = stack[-1]
                    if isinstance(target, SymDict):
                        target.add([(k, v)])
                    else:
                        self._container_op(events, target, at, "__setitem__")
                elif op == 0x65:  # APPENDS
                    items = pop_mark()
                    if not stack:
                        raise PickleError("APPENDS on empty stack")
                    target = stack[-1]
                    if isinstance(target, SymList):
                        target.add(items)
                    else:
                        self._container_op(events, target, at, "extend")
                elif op == 0x61:  # APPEND
                    v = pop()
                    if not stack:
                        raise PickleError("APPEND on empty stack")
                    target = stack[-1]
                    if isinstance(target, SymList):
                        target.add([v])
                    else:
                        self._container_op(events, target, at, "append")
                elif op == 0x93:  # STACK_GLOBAL
                    name = pop()
                    module = pop()
                    if isinstance(module, str) and isinstance(name, str):
                        push(make_global(module, name, at))
                    else:
                        events.append(Event("dynamic-global", at, None, "STACK_GLOBAL with a non-literal name"))
                        push(GlobalRef(str(module)[:200], str(name)[:200], at, proto))
                elif op == 0x63:  # GLOBAL
                    mod_b, pos = self._line(pos)
                    name_b, pos = self._line(pos)
                    push(make_global(mod_b.decode("utf-8", "replace"), name_b.decode("utf-8", "replace"), at))
                elif op == 0x81:  # NEWOBJ
                    args = pop()
                    cls = pop()
                    push(call(cls, args, at, "newobj"))
                elif op == 0x92:  # NEWOBJ_EX
                    kwargs = pop()
                    args = pop()
                    cls = pop()
                    push(call(cls, (args, kwargs), at, "newobj_ex"))
                elif op == 0x80:  # PROTO
                    proto = buf[pos]
                    pos += 1
                    if proto > 5:
                        raise PickleError(f"unsupported pickle protocol {proto}")
                    r.proto = max(r.proto, proto)
                elif op == 0x95:  # FRAME: only a length prefix for buffering
                    pos += 8
                elif op == 0x2E:  # STOP
                    r.stopped = True
                    r.end = pos
                    r.opcodes = n
                    return
                elif op == 0x30:  # POP
                    if stack:
                        stack.pop()
                    elif marks:
                        pop_mark()
                    else:
                        raise PickleError("POP on empty stack")
                elif op == 0x31:  # POP_MARK
                    pop_mark()
                elif op == 0x32:  # DUP
                    if not stack:
                        raise PickleError("DUP on empty stack")
                    push(stack[-1])
                elif op == 0x8A:  # LONG1
                    size = buf[pos]
                    pos += 1
                    push(int.from_bytes(buf[pos : pos + size], "little", signed=True))
                    pos += size
                elif op == 0x8B:  # LONG4
                    size = _I32(buf, pos)[0]
                    pos += 4
                    if size < 0 or pos + size > end:
                        raise PickleError("LONG4 size out of range")
                    push(int.from_bytes(buf[pos : pos + size], "little", signed=True) if size <= 64 else BIGINT)
                    pos += size
                elif op == 0x8F:  # EMPTY_SET
                    push(SymList())
                elif op == 0x90:  # ADDITEMS
                    items = pop_mark()
                    if not stack:
                        raise PickleError("ADDITEMS on empty stack")
                    target = stack[-1]
                    if isinstance(target, SymList):
                        target.add(items)
                    else:
                        self._container_op(events, target, at, "add")
                elif op == 0x91 or op == 0x6C:  # FROZENSET
                    sl = SymList()
                    sl.add(pop_mark())
                    push(sl)
                elif op == 0x64:  # DICT
                    items = pop_mark()
                    if len(items) % 2:
                        raise PickleError("odd number of items for DICT")
                    sd = SymDict()
                    sd.add(list(zip(items[::2], items[1::2], strict=True)))
                    push(sd)
                elif op == 0x69:  # INST: module\nname\n, args from mark
                    mod_b, pos = self._line(pos)
                    name_b, pos = self._line(pos)
                    args = tuple(pop_mark())
                    ref = make_global(mod_b.decode("utf-8", "replace"), name_b.decode("utf-8", "replace"), at)
                    push(call(ref, args, at, "inst"))
                elif op == 0x6F:  # OBJ: cls and args from mark
                    items = pop_mark()
                    if not items:
                        raise PickleError("OBJ without a class")
                    push(call(items[0], tuple(items[1:]), at, "obj"))
                elif op == 0x70:  # PUT
                    line, pos = self._line(pos)
                    try:
                        memo[int(line)] = stack[-1] if stack else None
                    except ValueError:
                        raise PickleError("invalid PUT index") from None
                elif op == 0x67:  # GET
                    line, pos = self._line(pos)
                    try:
                        key = int(line)
                    except ValueError:
                        raise PickleError("invalid GET index") from None
                    if key not in memo:
                        raise PickleError(f"memo key {key} missing")
                    push(memo[key])
                elif op == 0x49:  # INT (also True/False as I01/I00)
                    line, pos = self._line(pos)
                    try:
                        push(int(line) if len(line) < 64 else BIGINT)
                    except ValueError:
                        raise PickleError("invalid INT") from None
                elif op == 0x4C:  # LONG
                    line, pos = self._line(pos)
                    try:
                        push(int(line.rstrip(b"L")) if len(line) < 64 else BIGINT)
                    except ValueError:
                        raise PickleError("invalid LONG") from None
                elif op == 0x46:  # FLOAT
                    _, pos = self._line(pos)
                    push(FLOAT)
                elif op == 0x53:  # STRING: a quoted repr
                    line, pos = self._line(pos)
                    if len(line) < 2 or line[:1] != line[-1:] or line[:1] not in (b"'", b'"'):
                        raise PickleError("STRING not quoted")
                    raw = codecs.escape_decode(line[1:-1])[0]
                    push(raw.decode("latin-1") if len(raw) <= MAX_STR else Blob("bytes", memoryview(raw), at))
                elif op == 0x56:  # UNICODE: raw-unicode-escape line
                    line, pos = self._line(pos)
                    push(line.decode("raw-unicode-escape") if len(line) <= MAX_STR else FLOAT)
                elif op == 0x54 or op == 0x55:  # BINSTRING, SHORT_BINSTRING
                    if op == 0x55:
                        size = buf[pos]
                        pos += 1
                    else:
                        size = _I32(buf, pos)[0]
                        pos += 4
                        if size < 0:
                            raise PickleError("negative BINSTRING size")
                    if pos + size > end:
                        raise PickleError("string runs past the end of the stream")
                    if size <= MAX_STR:
                        push(bytes(mv[pos : pos + size]).decode("latin-1"))
                    else:
                        push(Blob("bytes", mv[pos : pos + size], pos))
                    pos += size
                elif op == 0x50:  # PERSID
                    _, pos = self._line(pos)
                    push(PERSISTENT)
                elif op == 0x51:  # BINPERSID
                    pop()
                    push(PERSISTENT)
                elif op == 0x82 or op == 0x83 or op == 0x84:  # EXT1, EXT2, EXT4
                    if op == 0x82:
                        code = buf[pos]
                        pos += 1
                    elif op == 0x83:
                        code = _U16(buf, pos)[0]
                        pos += 2
                    else:
                        code = _I32(buf, pos)[0]
                        pos += 4
                    events.append(Event("extension", at, None, f"copyreg extension code {code}"))
                    push(EXT)
                elif op == 0x97:  # NEXT_BUFFER
                    push(BUFFER)
                elif op == 0x98:  # READONLY_BUFFER
                    if not stack:
                        raise PickleError("READONLY_BUFFER on empty stack")
                else:
                    raise PickleError(f"invalid opcode 0x{op:02x}")
                if pos > end:
                    raise PickleError("opcode argument runs past the end of the stream")
        except BaseException:
            r.end, r.opcodes = at + 1, n
            raise

    @staticmethod
    def _container_op(events: list[Event], target: Any, at: int, method: str) -> None:
        """SETITEMS/APPENDS on something that is not a plain container calls its method."""
        if isinstance(target, Call) and isinstance(target.func, GlobalRef):
            events.append(Event("call", at, target.func, method))
        elif isinstance(target, GlobalRef):
            events.append(Event("build-global", at, target, f"{method} on an imported object"))

    def _joblib_array(self, r: PickleReport, stack: list[Any], wrapper: Call, pos: int) -> int:
        """joblib writes array bytes (or a nested pickle for object arrays) right after the wrapper."""
        state = wrapper.state
        if not isinstance(state, SymDict):
            raise PickleError("joblib array wrapper without a state dict")
        info = _dtype_info(state.get("dtype"))
        shape = state.get("shape")
        if info is None or not isinstance(shape, tuple) or not all(isinstance(x, int) and x >= 0 for x in shape):
            raise PickleError("joblib array wrapper with a non-literal dtype or shape")
        itemsize, hasobject = info
        stack[-1] = BUFFER
        if hasobject:
            nested = PickleMachine(self.buf, pos, self.end, deadline=self.deadline, max_stack=self.max_stack).run()
            r.events.extend(nested.events)
            r.nested.extend(nested.nested)
            if nested.error is not None:
                raise PickleError(f"object array at {pos}: {nested.error}")
            return nested.end
        if state.get("numpy_array_alignment_bytes") is not None:
            if pos >= self.end:
                raise PickleError("joblib padding byte missing")
            pos += 1 + self.buf[pos]
        count = 1
        for dim in shape:
            count *= dim
        size = count * itemsize
        if pos + size > self.end:
            raise PickleError("joblib array data runs past the end of the stream")
        # A plain pickle.load would read these bytes as opcodes: look at them that way too.
        r.nested.append(Nested(pos, pos, pos + size, "bytes after a joblib array wrapper", strict=False))
        return pos + size


def scan_stream(
    buf: Any,
    start: int = 0,
    end: int | None = None,
    *,
    deadline: Deadline | None = None,
    max_stack: int = 5_000_000,
    max_streams: int = 64,
) -> list[PickleReport]:
    """Every consecutive pickle stream from `start` (torch legacy files and stacked pickles hold
    several; `pickle.load` called repeatedly would run each). Stops at the first non-pickle bytes."""
    end = len(buf) if end is None else end
    reports: list[PickleReport] = []
    pos = start
    while pos < end and len(reports) < max_streams:
        report = PickleMachine(buf, pos, end, deadline=deadline, max_stack=max_stack).run()
        reports.append(report)
        if report.error is not None or not report.stopped:
            break
        pos = report.end
        if pos >= end or buf[pos] != 0x80 or pos + 1 >= end or not 2 <= buf[pos + 1] <= 5:
            break
    return reports
