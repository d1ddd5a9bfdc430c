"""joblib's arrays inside a pickle stream: what follows a NumpyArrayWrapper.

joblib pickles each array as a `NumpyArrayWrapper` whose state names dtype and shape, then writes
the array's raw bytes (or, for object arrays, a whole nested pickle) straight into the stream. The
symbolic machine calls `follow_joblib_array` after BUILD on such a wrapper to step over the bytes
exactly as joblib's loader would, and to record them for a second look.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tutela.posture.pickle_values import BUFFER, Call, Nested, PickleError, PickleReport, SymDict, dtype_info


def follow_joblib_array(
    buf: Any,
    end: int,
    r: PickleReport,
    stack: list[Any],
    wrapper: Call,
    pos: int,
    run_nested: Callable[[int], PickleReport],
) -> int:
    """Step over the array data after `wrapper` (at `pos`); return where the stream resumes."""
    state = wrapper.state
    if not isinstance(state, SymDict):
        raise PickleError("joblib array wrapper without a state dict")
    info = dtype_info(state.get("dtype"))
    shape = state.get("shape")
    if info is None or not isinstance(shape, tuple) or not all(isinstance(x, int) and x >= 0 for x in shape):
        raise PickleError("joblib array wrapper with a non-literal dtype or shape")
    itemsize, hasobject = info
    stack[-1] = BUFFER
    if hasobject:
        nested = run_nested(pos)
        r.events.extend(nested.events)
        r.nested.extend(nested.nested)
        if nested.error is not None:
            raise PickleError(f"object array at {pos}: {nested.error}")
        return nested.end
    if state.get("numpy_array_alignment_bytes") is not None:
        if pos >= end:
            raise PickleError("joblib padding byte missing")
        pos += 1 + buf[pos]
    count = 1
    for dim in shape:
        count *= dim
    size = count * itemsize
    if pos + size > end:
        raise PickleError("joblib array data runs past the end of the stream")
    # A plain pickle.load would read these bytes as opcodes: look at them that way too.
    r.nested.append(Nested(pos, pos, pos + size, "bytes after a joblib array wrapper", strict=False))
    return pos + size
