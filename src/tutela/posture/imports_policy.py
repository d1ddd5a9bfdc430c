"""Which imports a model file may make: allow-lists per library, a dangerous list, and the rest.

A pickle runs code through the globals it imports and calls. Each global is judged as one of:
- dangerous (CRITICAL: runs code, commands, network, nested deserialisation; HIGH: file
  system access or attribute-chain primitives),
- allowed (the names torch, numpy, scikit-learn, ... really put in their files),
- unlisted standard library (HIGH: the standard library is where gadget chains live),
- unknown (MEDIUM: a third-party or user class, e.g. a full-model pickle's own module).
Dotted names (protocol 4 walks attributes: `numpy.testing._private.utils` + `os.system`) are
judged by every attribute path they can reach, so an allowed module never launders a
dangerous one. Python 2 names are judged as Python 3 maps them, and as written.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass

from tutela.core.findings import Severity


def _words(text: str) -> list[str]:
    return text.split()


# --- dangerous: module prefixes (the module and all its submodules and attributes) -------------
_CRITICAL_MODULES = _words(
    "os posix nt subprocess commands popen2 pty _posixsubprocess _winapi msvcrt runpy importlib imp "
    "zipimport pkgutil pip ensurepip setuptools distutils venv site ctypes _ctypes cffi socket _socket "
    "ssl asyncio multiprocessing concurrent _thread thread threading signal code codeop webbrowser "
    "cProfile profile _lsprof pdb bdb trace timeit doctest idlelib pydoc lib2to3 marshal pickle _pickle "
    "cPickle pickletools dill cloudpickle shelve copyreg._reconstructor.__globals__ http urllib urllib2 "
    "urllib3 requests httpx aiohttp ftplib smtplib smtpd telnetlib poplib imaplib nntplib xmlrpc "
    "socketserver wsgiref antigravity this sys builtins.eval builtins.exec builtins.compile "
    "builtins.__import__ builtins.getattr builtins.setattr builtins.delattr builtins.globals "
    "builtins.locals builtins.vars builtins.input builtins.breakpoint builtins.help builtins.open "
    "builtins.execfile builtins.apply builtins.reload builtins.file builtins.__loader__ "
    "builtins.__build_class__ __builtin__.eval __builtin__.exec __builtin__.execfile __builtin__.compile "
    "__builtin__.__import__ __builtin__.getattr __builtin__.apply __builtin__.open __builtin__.file "
    "__builtin__.input types.CodeType types.FunctionType types.LambdaType types.MethodType "
    "types.ModuleType _operator.attrgetter _operator.methodcaller operator.attrgetter "
    "operator.methodcaller functools.reduce _functools.reduce logging.config yaml jinja2 mako IPython "
    "ipykernel jupyter_client uuid._get_command_stdout _osx_support _aix_support sysconfig._main "
    "platform.popen platform._syscmd_file platform._syscmd_ver ctypes.util numpy.load numpy.loads "
    "numpy.testing._private.utils.runstring numpy.f2py numpy.distutils numpy.lib.npyio.load "
    "numpy.lib._npyio_impl.load numpy.lib.utils.safe_eval numpy.ctypeslib torch.load "
    "torch.serialization.load torch.hub torch.jit torch.ops torch.classes torch.utils.cpp_extension "
    "torch._inductor torch._dynamo torch.fx.experimental torch.utils.collect_env "
    "torch.utils._config_module torch.package torch.utils.data.datapipes torch.testing torch.distributed.rpc "
    "torch.distributed.run torch.distributed.launch torch.distributed.elastic torch.distributed.launcher "
    "torch.cuda._utils torch.backends.cudnn.rnn torch._export torch.export "
    "torch.compiler joblib.load joblib.numpy_pickle.load joblib.Parallel joblib._parallel_backends "
    "joblib.externals keras.src.utils.python_utils keras.utils.python_utils "
    "tensorflow.python.ops.script_ops transformers.utils.hub transformers.dynamic_module_utils "
    "huggingface_hub test.support unittest.mock _io.open io.open_code "
    "tensorflow.io tensorflow.python.ops.io_ops tensorflow.python.platform.gfile tensorflow.compat.v1.io "
    "tensorflow.python.lib.io pandas.read_pickle pandas.io.pickle pandas.eval pandas.core.computation "
    "numexpr sympy.sympify sympy.parsing torch.fx dill cloudpickle fsspec smart_open boto3 botocore paramiko "
    "pexpect sh plumbum invoke fabric sklearn.externals.joblib.load sklearn.utils._testing scipy.weave "
    "keras.utils.get_file tensorflow.keras.utils.get_file mlflow.pyfunc transformers.dynamic_module_utils "
    "git docker psutil win32api win32com win32process pywintypes multiprocess scapy websocket websockets zmq grpc "
    "redis pymongo sqlalchemy psycopg2 pycurl httplib2 httplib mechanize selenium playwright "
    # module names that only exist to smuggle a name past list-based scanners, and stdlib/torch corners
    # that run code (cross-checked with picklescan, modelscan and fickling: tests/posture/test_peer_globals.py)
    "__builtins__ eval exec compile _pyrepl numpy.testing torch.compile torch.utils.bottleneck "
    "torch.jit.unsupported_tensor_ops torch._C logging.handlers logging.FileHandler _frozen_importlib "
    "_frozen_importlib_external _imp compileall py_compile syslog"
)
_HIGH_MODULES = _words(
    "numpy.save numpy.savez numpy.savez_compressed numpy.savetxt numpy.fromfile numpy.loadtxt numpy.genfromtxt "
    "numpy.memmap numpy.lib.format.open_memmap numpy.DataSource numpy.lib.npyio "
    "pandas.read_csv pandas.read_json pandas.read_parquet pandas.io scipy.io "
    "shutil tempfile glob fileinput linecache filecmp pathlib io.open io.FileIO _io.FileIO io.open "
    "codecs.open gzip.open bz2.open lzma.open tarfile zipfile sqlite3 dbm tkinter mmap "
    "operator.itemgetter _operator.itemgetter functools.partial.__call__ builtins.type builtins.super "
    "builtins.classmethod builtins.staticmethod builtins.property builtins.memoryview builtins.print "
    "builtins.exit builtins.quit __builtin__.type inspect gc weakref resource fcntl termios grp pwd spwd "
    "crypt atexit faulthandler tracemalloc select selectors mailbox email.message_from_file "
    "string.Formatter string.Template joblib sklearn.externals.joblib test difflib platform"
)
_BARE_DANGEROUS = frozenset(
    _words(
        "eval exec execfile __import__ system popen popen2 popen3 spawnl spawnv spawnve spawnlp execv execve "
        "execl execlp Popen check_output check_call getoutput getstatusoutput run_path run_module runcode "
        "runsource runctx _run_code getattr setattr delattr globals __globals__ __builtins__ __subclasses__ "
        "__getattribute__ __reduce__ __reduce_ex__ __class__ __dict__ __code__ __bases__ __mro__ "
        "import_module load_library load_source"
    )
)

# --- allowed: exact (module, name) pairs and per-library rules ----------------------------------
_ALLOWED_EXACT = {
    "builtins": "set frozenset list dict tuple bytearray bytes slice range complex object bool int float str "
    "Ellipsis NotImplemented",
    "__builtin__": "set frozenset list dict tuple bytearray bytes slice xrange complex object bool int float "
    "unicode long basestring str",
    "copy_reg": "_reconstructor",
    "copyreg": "_reconstructor __newobj__ __newobj_ex__",
    "_codecs": "encode",
    "codecs": "encode",
    "collections": "OrderedDict defaultdict Counter deque namedtuple ChainMap",
    "_collections": "deque defaultdict OrderedDict",
    "datetime": "datetime date time timedelta timezone",
    "decimal": "Decimal",
    "fractions": "Fraction",
    "uuid": "UUID SafeUUID",
    "argparse": "Namespace",
    "types": "SimpleNamespace",
    "enum": "Enum IntEnum",
    "re": "_compile compile",
    "array": "array _array_reconstructor",
    "pathlib": "PosixPath WindowsPath PurePosixPath PureWindowsPath Path",
    "functools": "partial",
    "_functools": "partial",
    "numpy": "ndarray dtype float16 float32 float64 int8 int16 int32 int64 uint8 uint16 uint32 uint64 bool_ "
    "complex64 complex128 longdouble object_ str_ bytes_ void matrix generic number",
    "numpy.core.multiarray": "_reconstruct scalar",
    "numpy._core.multiarray": "_reconstruct scalar",
    "numpy.core.numeric": "_frombuffer",
    "numpy._core.numeric": "_frombuffer",
    "numpy.core._multiarray_umath": "_reconstruct scalar",
    "numpy._core._multiarray_umath": "_reconstruct scalar",
    "numpy.random": "__RandomState_ctor __generator_ctor __bit_generator_ctor",
    "numpy.random._pickle": "__randomstate_ctor __generator_ctor __bit_generator_ctor",
    "numpy.ma.core": "_mareconstruct MaskedArray",
    "joblib.numpy_pickle": "NumpyArrayWrapper NDArrayWrapper",
    "sklearn.externals.joblib.numpy_pickle": "NumpyArrayWrapper NDArrayWrapper",
    "scipy.sparse._csr": "csr_matrix csr_array",
    "scipy.sparse._csc": "csc_matrix csc_array",
    "scipy.sparse._coo": "coo_matrix coo_array",
    "torch": "Size device dtype float32 float64 float16 bfloat16 int64 int32 int16 int8 uint8 bool "
    "complex64 complex128 FloatStorage DoubleStorage HalfStorage BFloat16Storage LongStorage IntStorage "
    "ShortStorage CharStorage ByteStorage BoolStorage ComplexFloatStorage ComplexDoubleStorage "
    "QInt8Storage QUInt8Storage QInt32Storage UntypedStorage TypedStorage Tensor per_tensor_affine "
    "per_channel_affine contiguous_format channels_last preserve_format strided sparse_coo layout "
    "memory_format finfo iinfo",
    "torch._utils": "_rebuild_tensor _rebuild_tensor_v2 _rebuild_tensor_v3 _rebuild_parameter "
    "_rebuild_parameter_with_state _rebuild_qtensor _rebuild_sparse_tensor _rebuild_nested_tensor "
    "_rebuild_device_tensor_from_numpy _rebuild_meta_tensor_no_storage _rebuild_wrapper_subclass "
    "_rebuild_from_type _rebuild_from_type_v2 _rebuild_xla_tensor _rebuild_mlc_tensor",
    "torch._tensor": "_rebuild_from_type _rebuild_from_type_v2",
    "torch.storage": "UntypedStorage TypedStorage _TypedStorage _load_from_bytes",  # payload scanned as a file
    "torch.nn.parameter": "Parameter UninitializedParameter Buffer",
    "torch.serialization": "_get_layout",
    "torch.backends.quantized": "",
    "torch.nn.modules.container": "Sequential ModuleList ModuleDict ParameterList ParameterDict",
    "collections.abc": "",
    "xgboost.core": "Booster",
    "xgboost.sklearn": "XGBClassifier XGBRegressor XGBRanker XGBRFClassifier XGBRFRegressor",
    "lightgbm.basic": "Booster",
    "lightgbm.sklearn": "LGBMClassifier LGBMRegressor LGBMRanker LGBMModel",
    "torch.jit._pickle": "build_intlist build_tensorlist build_doublelist build_boollist build_complexlist "
    "build_tensor_from_id restore_type_tag",
}
ALLOWED: frozenset[tuple[str, str]] = frozenset(
    (module, name) for module, names in _ALLOWED_EXACT.items() for name in names.split()
)
# Libraries whose *classes* (CapWords names, no attribute walk) may appear in their model files.
_CLASS_PREFIXES = (
    "sklearn.",
    "__torch__.",
    "numpy.random.",
    "torch.nn.modules.",
    "torch.optim.",
    "torch.ao.quantization.",
    "xgboost.",
    "lightgbm.",
    "catboost.",
    "scipy.sparse.",
    "scipy.stats._distn_infrastructure.",
    "numpy.dtypes",
    "transformers.models.",
    "tokenizers.",
    "sentence_transformers.models.",
    "pandas.core.",
)
_CLASS_NAME = re.compile(r"^_?[A-Z][A-Za-z0-9_]*$")
_FUNC_OK = {
    "pandas._libs.internals": re.compile(r"^_unpickle_block$"),
    "pandas.core.internals.blocks": re.compile(r"^new_block$"),
    "numpy.core.multiarray": re.compile(r"^_reconstruct$"),
    "sklearn.tree._tree": re.compile(r"^[A-Z]\w*$"),
    "scipy.sparse": re.compile(r"^[a-z]+_(matrix|array)$"),
    "numpy": re.compile(r"^(float|int|uint|complex)\d+$"),
}
_CYTHON_LIBS = frozenset({"numpy", "sklearn", "scipy", "xgboost", "lightgbm", "catboost", "pandas", "tokenizers"})
# Known ML namespaces: an unlisted name there is unknown (MEDIUM), like third-party classes.
_STDLIB = frozenset(sys.stdlib_module_names) | {
    "__builtin__",
    "__builtins__",
    "copy_reg",
    "commands",
    "cPickle",
    "exceptions",
    "test",  # the regression-test package (test.support spawns interpreters); not in stdlib_module_names
    "_pyrepl",
}


@dataclass(frozen=True, slots=True)
class Judgement:
    severity: Severity | None  # None: allowed
    rule: str
    reason: str


ALLOWED_JUDGEMENT = Judgement(None, "allowed", "allow-listed")


def _matches(path: str, entries: list[str]) -> str | None:
    for entry in entries:
        if path == entry or path.startswith(entry + "."):
            return entry
    return None


_CRIT = sorted(_CRITICAL_MODULES, key=len, reverse=True)
_HIGH = sorted(_HIGH_MODULES, key=len, reverse=True)


_MODULE_ATTRS = frozenset(
    _words(
        "os sys subprocess builtins __builtin__ __builtins__ socket ctypes importlib pickle _pickle cPickle "
        "marshal shutil runpy pty posix nt commands webbrowser pip asyncio multiprocessing dill http urllib "
        "requests"
    )
)
_SAFE_DUNDERS = frozenset({"__init__", "__newobj__", "__newobj_ex__", "__main__", "__version__"})


def _dangerous(module: str, name: str) -> Judgement | None:
    """Judge every attribute path the global can reach, keeping the worst."""
    parts = name.split(".")
    full = f"{module}.{name}"
    # Attribute walks through the name: "os.system" reached from numpy.testing._private.utils
    candidates = [full] + [".".join(parts[i:]) for i in range(len(parts) - 1)]
    for path in candidates:
        hit = _matches(path, _CRIT)
        if hit is not None:
            return Judgement(Severity.CRITICAL, "pickle.dangerous-global", f"{full} runs code ({hit})")
    for i, part in enumerate(parts):
        if part in _BARE_DANGEROUS or (part.startswith("__") and part.endswith("__") and part not in _SAFE_DUNDERS):
            return Judgement(Severity.CRITICAL, "pickle.dangerous-global", f"{full} reaches {part}")
        if part in _MODULE_ATTRS and (i < len(parts) - 1 or len(parts) == 1):
            return Judgement(Severity.CRITICAL, "pickle.dangerous-global", f"{full} reaches the {part} module")
    for path in candidates:
        hit = _matches(path, _HIGH)
        if hit is not None:
            return Judgement(Severity.HIGH, "pickle.risky-global", f"{full} touches files or internals ({hit})")
    return None


def judge_global(module: str, name: str, mapped: tuple[str, str] | None = None) -> Judgement:
    """The verdict on one import a pickle makes (raw and Python-3-mapped names)."""
    worst: Judgement | None = None
    for mod, nm in ((module, name), mapped) if mapped else ((module, name),):
        j = _judge_one(mod, nm)
        if j.severity is not None and (worst is None or worst.severity is None or j.severity > worst.severity):
            worst = j
    return worst or ALLOWED_JUDGEMENT


def _judge_one(module: str, name: str) -> Judgement:
    if not module or not name or any(c in module + name for c in "\n\r\x00 /\\"):
        return Judgement(Severity.HIGH, "pickle.malformed-global", f"malformed global {module!r} {name!r}")
    if not (module + name).isascii():  # homoglyphs: "оs" (Cyrillic о) reads as os to a person, not to a list
        return Judgement(Severity.HIGH, "pickle.malformed-global", f"non-ASCII import name {module!r} {name!r}")
    if (module, name) in ALLOWED:  # exact pairs: no attribute walk can hide behind them
        return ALLOWED_JUDGEMENT
    danger = _dangerous(module, name)
    if danger is not None:
        return danger
    if "." not in name:
        if (name.startswith("__pyx_unpickle_") or name == "newObj") and module.split(".", 1)[0] in _CYTHON_LIBS:
            return ALLOWED_JUDGEMENT  # Cython's generated unpickle helpers: they only set state
        func_ok = _FUNC_OK.get(module)
        if func_ok is not None and func_ok.match(name):
            return ALLOWED_JUDGEMENT
        if _CLASS_NAME.match(name) and any(module.startswith(p) or module == p.rstrip(".") for p in _CLASS_PREFIXES):
            return ALLOWED_JUDGEMENT
    top = module.split(".", 1)[0]
    if top in _STDLIB:
        return Judgement(
            Severity.HIGH, "pickle.unlisted-stdlib-global", f"{module}.{name} is a standard-library name no model needs"
        )
    return Judgement(Severity.MEDIUM, "pickle.unknown-global", f"{module}.{name} is not on any allow-list")
