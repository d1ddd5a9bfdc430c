"""A symbolic pickle machine for protocols 0-5 that never unpickles.

It walks the opcodes the way `pickle.Unpickler` would, but every object stays symbolic: a
GLOBAL becomes a `GlobalRef` (what `find_class` would import), REDUCE/NEWOBJ/INST/OBJ become
`Call`s, BUILD records whose `__setstate__` would run. Memo, marks and stack are followed, so
STACK_GLOBAL built from memoised strings resolves. Python 2 names are mapped the way Python 3
maps them on load (`_compat_pickle`). A stream that breaks is judged by what would already
have executed before the break (`error` holds where and why).

Payloads (BINBYTES, BINUNICODE, ...) are skipped as zero-copy windows, so the cost grows with
the number of opcodes, not with the size of the data they carry.

The pickle side of posture, module by module: pickle_reader (opcode arguments), this machine
(stack, memo, marks, calls), pickle_values (the symbolic values and the report), pickle_joblib
(arrays joblib writes inside the stream), imports_policy (the judgement of each global) and
pickle_scan (machine + policy + nested payloads -> issues).
"""

from __future__ import annotations

import struct
from typing import Any

from tutela.posture.limits import Deadline
from tutela.posture.pickle_joblib import follow_joblib_array
from tutela.posture.pickle_reader import I32 as _I32
from tutela.posture.pickle_reader import U16 as _U16
from tutela.posture.pickle_reader import U32 as _U32
from tutela.posture.pickle_reader import U64 as _U64
from tutela.posture.pickle_reader import (
    memo_index,
    read_global,
    read_line,
    text_int,
    text_long,
    text_string,
    text_unicode,
)
from tutela.posture.pickle_values import (
    BIGINT,
    BUFFER,
    DESERIALISERS,
    EXT,
    FLOAT,
    JOBLIB_WRAPPERS,
    MAX_STR,
    PERSISTENT,
    Blob,
    Call,
    Event,
    GlobalRef,
    Nested,
    Opaque,
    PickleError,
    PickleReport,
    SymDict,
    SymList,
    decode_arg,
    map_py2,
)


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
            mapped = map_py2(module, name) if proto < 3 else None
            ref = GlobalRef(module, name, at, proto, mapped)
            events.append(Event("import", at, ref))
            return ref

        def call(func: Any, args: Any, at: int, kind: str) -> Call:
            if isinstance(func, GlobalRef):
                events.append(Event("call", at, func, kind))
                if func.dotted in DESERIALISERS or (func.mapped and ".".join(func.mapped) in DESERIALISERS):
                    arg = args[0] if isinstance(args, tuple) and args else None
                    if isinstance(arg, Blob):
                        base = arg.view.obj is buf
                        s = arg.offset
                        r.nested.append(Nested(at, s, s + arg.view.nbytes, f"{func.dotted} payload", None))
                        if not base:
                            r.nested[-1].data = arg.view.tobytes()
                    else:
                        raw = decode_arg(arg)
                        if raw is not None:
                            r.nested.append(Nested(at, 0, len(raw), f"{func.dotted} of decoded payload", raw))
            else:
                what = type(func).__name__ if not isinstance(func, Opaque) else func.what
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
                elif op == 0x8C:  # SHORT_BINUNICODE (fast path)
                    size = buf[pos]
                    pos += 1
                    if pos + size > end:
                        raise PickleError("string runs past the end of the stream")
                    try:
                        push(buf[pos : pos + size].decode("utf-8", "surrogatepass"))
                    except UnicodeDecodeError:
                        raise PickleError("invalid UTF-8 in string") from None
                    pos += size
                elif op == 0x4B:  # BININT1
                    push(buf[pos])
                    pos += 1
                elif op == 0x4A:  # BININT
                    push(_I32(buf, pos)[0])
                    pos += 4
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
                elif op == 0x4D:  # BININT2
                    push(_U16(buf, pos)[0])
                    pos += 2
                elif op == 0x4E:  # NONE
                    push(None)
                elif op == 0x88:  # NEWTRUE
                    push(True)
                elif op == 0x89:  # NEWFALSE
                    push(False)
                elif op == 0x58 or op == 0x8D:  # BINUNICODE, BINUNICODE8
                    if op == 0x58:
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
                                pos = follow_joblib_array(self.buf, self.end, r, stack, obj, pos, self._run_nested)
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
                    module, name, pos = read_global(buf, pos, end)
                    push(make_global(module, name, at))
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
                    module, name, pos = read_global(buf, pos, end)
                    args = tuple(pop_mark())
                    push(call(make_global(module, name, at), args, at, "inst"))
                elif op == 0x6F:  # OBJ: cls and args from mark
                    items = pop_mark()
                    if not items:
                        raise PickleError("OBJ without a class")
                    push(call(items[0], tuple(items[1:]), at, "obj"))
                elif op == 0x70:  # PUT
                    line, pos = read_line(buf, pos, end)
                    memo[memo_index(line, "PUT")] = stack[-1] if stack else None
                elif op == 0x67:  # GET
                    line, pos = read_line(buf, pos, end)
                    key = memo_index(line, "GET")
                    if key not in memo:
                        raise PickleError(f"memo key {key} missing")
                    push(memo[key])
                elif op == 0x49:  # INT (also True/False as I01/I00)
                    line, pos = read_line(buf, pos, end)
                    push(text_int(line))
                elif op == 0x4C:  # LONG
                    line, pos = read_line(buf, pos, end)
                    push(text_long(line))
                elif op == 0x46:  # FLOAT
                    _, pos = read_line(buf, pos, end)
                    push(FLOAT)
                elif op == 0x53:  # STRING: a quoted repr
                    line, pos = read_line(buf, pos, end)
                    push(text_string(line, at))
                elif op == 0x56:  # UNICODE: raw-unicode-escape line
                    line, pos = read_line(buf, pos, end)
                    push(text_unicode(line))
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
                    _, pos = read_line(buf, pos, end)
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

    def _run_nested(self, pos: int) -> PickleReport:
        return PickleMachine(self.buf, pos, self.end, deadline=self.deadline, max_stack=self.max_stack).run()


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
