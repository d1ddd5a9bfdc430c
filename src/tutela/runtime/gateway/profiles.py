"""Gateway configuration: profiles per app, API key or tenant, compiled into pipelines, hot-reloaded.

A profile says, separately for each channel of text the gateway sees, which detectors run and what
happens above a threshold (monitor, block or redact):

  prompt       what users send
  system       the application's own instructions (system/developer messages, Anthropic `system`,
               Responses `instructions`); unless configured, judged like `prompt` (but with the
               fast-tier default, for secrets only: "You are a helpful assistant..." is how
               role-play jailbreaks begin too, so injection detection there is noise)
  document     retrieved documents (Anthropic document blocks, embeddings input, scan API context)
  tool_output  tool results, tool definitions and MCP tool descriptions: untrusted text from tools
  output       what the model answers, including tool-call arguments

Detectors come from the `tutela.detectors` registry (pillar "runtime"); nothing is hard-coded. The
hot-reloaded part (profiles, keys, tenants, apps, prices) lives in `GatewayConfig`; `GatewaySettings`,
the `gateway:` section of tutela's config, adds the upstream and the limits.
"""

from __future__ import annotations

import fnmatch
import hashlib
import os
import re
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from tutela.core.errors import ConfigError
from tutela.core.findings import Action, Severity
from tutela.core.models import ModelCache
from tutela.core.pipeline import DetectorSpec, Pipeline
from tutela.core.policy import Policy, PolicyConfig, PolicyRule
from tutela.core.registry import DetectorRegistry

Channel = Literal["prompt", "system", "document", "tool_output", "output"]
CHANNELS: tuple[Channel, ...] = ("prompt", "system", "document", "tool_output", "output")
# The runtime pillar's TextSubject knows prompt, document and output: tool text is untrusted content.
SUBJECT_KIND: dict[str, str] = {
    "prompt": "prompt",
    "system": "prompt",
    "document": "document",
    "tool_output": "document",
    "output": "output",
}
ACTIONS: dict[str, Action] = {"monitor": Action.ALERT, "block": Action.BLOCK, "redact": Action.REDACT}

INLINE_SAFE = frozenset({"runtime.secrets", "runtime.pii", "runtime.obfuscation", "runtime.urls", "runtime.sql"})
_INJECTION_FAST = DetectorSpec(id="runtime.injection", params={"tier": "fast"})
# PII inline: the patterns and PERSON's cue phrases, not the PERSON model (~2 ms more per 1,000 characters, and a
# bare name is LOW severity anyway); a channel that wants it names runtime.pii with `ner: off` (the default).
_PII_FAST = DetectorSpec(id="runtime.pii", params={"ner": "heuristics"})
# The fast tier: what a channel runs when neither it nor tutela's `detectors.runtime` names detectors.
# Each of these costs well under 1 ms on a ~600-character prompt on one core (bench/runtime_detectors.py);
# the prompt-injection detector runs its lexical tier only (no MiniLM encoder), and topics (embeddings)
# and source code are left to profiles that ask for them. Measured in bench/gateway.py.
FAST_TIER: dict[str, tuple[DetectorSpec, ...]] = {
    "prompt": (
        _INJECTION_FAST,
        DetectorSpec(id="runtime.secrets"),
        _PII_FAST,
        DetectorSpec(id="runtime.obfuscation"),
    ),
    "system": (DetectorSpec(id="runtime.secrets"),),
    "document": (_INJECTION_FAST, DetectorSpec(id="runtime.obfuscation"), DetectorSpec(id="runtime.urls")),
    "tool_output": (
        _INJECTION_FAST,
        DetectorSpec(id="runtime.obfuscation"),
        DetectorSpec(id="runtime.urls"),
        DetectorSpec(id="runtime.secrets"),
    ),
    "output": (
        DetectorSpec(id="runtime.secrets"),
        _PII_FAST,
        DetectorSpec(id="runtime.urls"),
        DetectorSpec(id="runtime.sql"),
    ),
}
MAX_CONFIG_BYTES = 4 << 20
_HEX64 = re.compile(r"^[0-9a-f]{64}$")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ChannelConfig(_Model):
    enabled: bool = True
    detectors: tuple[DetectorSpec, ...] | None = None  # None: every installed runtime detector
    action: Literal["monitor", "block", "redact"] = "block"
    min_severity: Severity = Severity.MEDIUM
    min_confidence: float = Field(0.5, ge=0.0, le=1.0)
    rules: tuple[PolicyRule, ...] = ()  # finer rules, tried before the threshold above

    @field_validator("min_severity", mode="before")
    @classmethod
    def _severity(cls, value: object) -> Severity:
        if isinstance(value, Severity | str | int):
            return Severity.parse(value)
        raise ValueError(f"invalid severity {value!r}")


class ToolPolicy(_Model):
    allow: tuple[str, ...] | None = None  # glob patterns of tool names; None allows any tool


class BudgetConfig(_Model):
    window_s: float = Field(60.0, gt=0, le=86_400 * 31)
    requests: int | None = Field(None, ge=1)  # per key and user per window (rate limit)
    tokens: int | None = Field(None, ge=1)  # prompt + completion tokens per key and user per window
    cost: float | None = Field(None, gt=0)  # in the currency of `prices`, per key and user per window
    max_prompt_chars: int = Field(400_000, ge=1)  # checked before any detector runs


class StreamConfig(_Model):
    holdback_chars: int = Field(128, ge=0, le=65_536)  # never released before being judged with what follows
    lookback_chars: int = Field(1024, ge=0, le=65_536)  # already released context detectors see again
    max_output_chars: int = Field(2_000_000, ge=1)


class ProfileConfig(_Model):
    prompt: ChannelConfig = Field(default_factory=ChannelConfig)
    system: ChannelConfig | None = None  # None: as `prompt` (see the module docstring)
    document: ChannelConfig = Field(default_factory=ChannelConfig)
    tool_output: ChannelConfig = Field(default_factory=ChannelConfig)
    output: ChannelConfig = Field(default_factory=ChannelConfig)
    on_error: Literal["open", "closed"] = "open"
    detector_timeout_ms: float | None = Field(2000.0, gt=0)  # None: run inline, without a timeout
    # Texts up to this size judged only by bounded fast-tier detectors run on the event loop: the hop to the
    # detector pool and back costs more than the detectors (bench/gateway.py). 0: always the pool.
    inline_max_chars: int = Field(8192, ge=0)
    tools: ToolPolicy = Field(default_factory=ToolPolicy)
    budgets: BudgetConfig = Field(default_factory=BudgetConfig)
    stream: StreamConfig = Field(default_factory=StreamConfig)
    store_raw: bool = False  # write raw prompts and answers to the audit log (off: only hashes)


class KeyConfig(_Model):
    id: str = Field(min_length=1, max_length=128)
    sha256: str  # of the key; the key itself is never stored
    tenant: str = "default"
    profile: str | None = None
    app: str | None = None

    @field_validator("sha256")
    @classmethod
    def _hex(cls, value: str) -> str:
        value = value.removeprefix("sha256:").lower()
        if not _HEX64.match(value):
            raise ValueError("must be the 64 hex digits of sha256(key); see `tutela gateway keys new`")
        return value


class TenantConfig(_Model):
    profile: str | None = None


class Price(_Model):
    input_per_1k: float = Field(0.0, ge=0)
    output_per_1k: float = Field(0.0, ge=0)


class GatewayConfig(_Model):
    """The hot-reloaded part: profiles and who gets which."""

    default_profile: str = "default"
    profiles: dict[str, ProfileConfig] = Field(default_factory=lambda: {"default": ProfileConfig()})
    keys: tuple[KeyConfig, ...] = ()
    tenants: dict[str, TenantConfig] = Field(default_factory=dict)
    apps: dict[str, str] = Field(default_factory=dict)  # x-tutela-app / metadata.app_name -> profile
    prices: dict[str, Price] = Field(default_factory=dict)  # model name (glob) -> price per 1k tokens

    @model_validator(mode="after")
    def _references(self) -> GatewayConfig:
        names = set(self.profiles)
        if self.default_profile not in names:
            raise ValueError(f"default_profile {self.default_profile!r} is not among profiles ({', '.join(names)})")
        refs = [(f"keys[{k.id}].profile", k.profile) for k in self.keys]
        refs += [(f"tenants.{t}.profile", c.profile) for t, c in self.tenants.items()]
        refs += [(f"apps.{a}", p) for a, p in self.apps.items()]
        for where, name in refs:
            if name is not None and name not in names:
                raise ValueError(f"{where}: unknown profile {name!r}")
        ids = [k.id for k in self.keys]
        if len(set(ids)) != len(ids):
            raise ValueError("keys: duplicate key id")
        return self


class GatewaySettings(GatewayConfig):
    """The `gateway:` section of tutela's config."""

    upstream: str | None = None  # OpenAI base URL, e.g. http://127.0.0.1:8000/v1
    anthropic_upstream: str | None = None  # base URL for /v1/messages; default: `upstream`
    upstream_api_key_env: str | None = None  # environment variable holding the upstream credential
    config_file: Path | None = None  # profiles, keys, tenants: hot-reloaded
    reload_interval_s: float = Field(1.0, gt=0)
    max_body_bytes: int = Field(8 << 20, ge=1024)
    max_messages: int = Field(4096, ge=1)
    upstream_timeout_s: float = Field(120.0, gt=0)
    body_timeout_s: float = Field(30.0, gt=0)  # a client that sends its body slower than this gets 408
    audit_file: Path | None = None  # default: <home>/gateway/audit.jsonl
    detector_threads: int = Field(4, ge=1, le=64)
    max_concurrency: int = Field(1024, ge=1)  # connections and requests in flight; beyond it uvicorn answers 503
    store_ingest_interval_s: float | None = Field(30.0, gt=0)  # readers ingest the spool too
    # processes serving the listen address (SO_REUSEPORT): detectors are CPU-bound Python, so one process
    # uses one core. Each worker keeps its own audit chain (audit.jsonl, audit.w1.jsonl, ...); budget
    # counters live in a table the workers share (shared_windows.py), so limits hold across them.
    # 0 (the default): one per CPU core this process may run on, at most AUTO_WORKERS_MAX (server.py).
    workers: int = Field(0, ge=0, le=64)
    # the cyclic GC (core/stalls.py): start-up objects are frozen once and young collections come every
    # 50,000 allocations (0 collections over 4 x 6 s of paced load at ~185 requests/s). Periodic freezing
    # (every gc_freeze_s; 0: off) would also freeze cyclic garbage until the next full pass (every
    # gc_full_s), and it measured no better here, so it is off by default.
    gc_freeze_s: float = Field(0.0, ge=0)
    gc_full_s: float = Field(600.0, ge=0)
    # the loop-lag timer's period (core/stalls.py): each tick wakes an idle gateway, and at 5 ms (the DNS
    # sensor's) the ticks alone took ~30 ms of CPU a second on the shared 2-core machine, ~6% of the CPU
    # per request at 200 requests/s. Stalls longer than a tick are all seen; shorter ones in proportion.
    loop_lag_tick_s: float = Field(0.05, gt=0)

    def gateway_config(self) -> GatewayConfig:
        return GatewayConfig(**{k: getattr(self, k) for k in GatewayConfig.model_fields})


# --- compiled --------------------------------------------------------------------------------


def bounded_fast(spec: DetectorSpec) -> bool:
    """A detector whose cost is bounded and sub-millisecond on a few KB: regexes, tables and a linear model
    (the injection detector's lexical tier), never an encoder or a model that may stall."""
    if spec.id == "runtime.injection":
        return spec.params.get("tier") == "fast"
    return spec.id in INLINE_SAFE


@dataclass(frozen=True)
class ChannelPlan:
    channel: str
    action: Action
    pipeline: Pipeline[Any]
    inline_ok: bool = False  # every detector is bounded_fast()

    @property
    def policy(self) -> Policy:
        return self.pipeline.policy


@dataclass(frozen=True)
class Profile:
    name: str
    config: ProfileConfig
    channels: Mapping[str, ChannelPlan | None]
    tool_allowed: Callable[[str], bool]

    def plan(self, channel: str) -> ChannelPlan | None:
        return self.channels.get(channel)


@dataclass(frozen=True)
class CompiledConfig:
    config: GatewayConfig
    profiles: Mapping[str, Profile]
    keys: Mapping[str, KeyConfig] = field(default_factory=dict)  # sha256 hex -> key

    @property
    def default(self) -> Profile:
        return self.profiles[self.config.default_profile]

    def profile_for(self, key: KeyConfig | None, app: str | None) -> Profile:
        if key is not None and key.profile:
            return self.profiles[key.profile]
        if key is not None and key.tenant in self.config.tenants:
            tenant = self.config.tenants[key.tenant].profile
            if tenant:
                return self.profiles[tenant]
        app = app or (key.app if key is not None else None)
        if app and app in self.config.apps:
            return self.profiles[self.config.apps[app]]
        return self.default


def _policy(channel: ChannelConfig, on_error: str) -> Policy:
    action = ACTIONS[channel.action]
    threshold = PolicyRule(min_severity=channel.min_severity, min_confidence=channel.min_confidence, action=action)
    # The injection detector reports a fast-tier-only score below `fast.threshold_high_severity` as MEDIUM: the
    # lexical model alone is not sure enough there to refuse a request (it flags ~4% of benign prompts at its
    # F1 threshold). Such findings are recorded, not acted on, unless the channel's own `rules` say otherwise.
    injection_band = (
        PolicyRule(
            detector="runtime.injection",
            min_severity=max(Severity.HIGH, channel.min_severity),
            min_confidence=channel.min_confidence,
            action=action,
        ),
        PolicyRule(detector="runtime.injection", action=Action.ALERT),
    )
    return Policy(
        PolicyConfig(
            rules=(*channel.rules, *injection_band, threshold),
            severity_actions={str(s): Action.ALERT for s in Severity},  # below threshold: recorded only
            on_error=on_error,  # type: ignore[arg-type]
        )
    )


def _tool_matcher(policy: ToolPolicy) -> Callable[[str], bool]:
    if policy.allow is None:
        return lambda name: True
    patterns = [re.compile(fnmatch.translate(p)) for p in policy.allow]
    return lambda name: any(p.match(name) for p in patterns)


def default_fallback(
    channel: str,
    registry: DetectorRegistry,
    runtime: Sequence[str],
    default_specs: Sequence[DetectorSpec] | None,
) -> tuple[DetectorSpec, ...]:
    """What a channel without its own `detectors` runs: tutela's `detectors.runtime` pipeline when set,
    else the fast tier (those of it installed), else, with none of it installed, every runtime detector."""
    if default_specs is not None:
        return tuple(default_specs)
    fast = tuple(s for s in FAST_TIER[channel] if s.id in registry)
    return fast or tuple(DetectorSpec(id=n) for n in runtime)


def compile_config(
    config: GatewayConfig,
    registry: DetectorRegistry,
    models: ModelCache,
    default_specs: Sequence[DetectorSpec] | None = None,
) -> CompiledConfig:
    """Build every profile's pipelines. Raises ConfigError naming the profile, channel and detector.

    A channel without its own `detectors` runs `default_fallback(...)`: `default_specs` (tutela's
    `detectors.runtime` pipeline) when given, else the fast tier.
    """
    runtime = [n for n in registry.names() if getattr(registry.get(n), "pillar", None) == "runtime"]
    fallback = {c: default_fallback(c, registry, runtime, default_specs) for c in CHANNELS}
    profiles: dict[str, Profile] = {}
    for name, prof in config.profiles.items():
        plans: dict[str, ChannelPlan | None] = {}
        for channel in CHANNELS:
            ch: ChannelConfig | None = getattr(prof, channel)
            if ch is None:  # system, not configured: as the prompt channel
                ch = prof.prompt
                specs = ch.detectors if ch.detectors is not None else fallback["system"]
            else:
                specs = ch.detectors if ch.detectors is not None else fallback[channel]
            where = f"profiles.{name}.{channel}.detectors"
            for i, spec in enumerate(specs):
                if spec.id not in registry:
                    known = ", ".join(runtime) or "none installed"
                    raise ConfigError(f"{where}[{i}]: unknown detector {spec.id!r}", hint=f"runtime detectors: {known}")
                if registry.get(spec.id).pillar != "runtime":
                    raise ConfigError(f"{where}[{i}]: detector {spec.id!r} is not a runtime detector")
            enabled = [s for s in specs if s.enabled]
            if not ch.enabled or not enabled:
                plans[channel] = None
                continue
            try:
                pipeline = Pipeline.build(registry, enabled, _policy(ch, prof.on_error), models)
            except ConfigError as exc:
                raise ConfigError(f"{where}: {exc}") from None
            plans[channel] = ChannelPlan(channel, ACTIONS[ch.action], pipeline, all(bounded_fast(s) for s in enabled))
        profiles[name] = Profile(name, prof, plans, _tool_matcher(prof.tools))
    return CompiledConfig(config, profiles, {k.sha256: k for k in config.keys})


def read_config_file(path: Path, base: GatewayConfig | None = None) -> GatewayConfig:
    """Parse a gateway config file (the GatewayConfig keys at top level, or under `gateway:`)."""
    return parse_config(_read_bytes(path), path, base)


def _read_bytes(path: Path) -> bytes:
    try:
        with path.open("rb") as fh:
            data = fh.read(MAX_CONFIG_BYTES + 1)
    except FileNotFoundError:
        raise ConfigError(f"{path}: gateway config file not found") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read ({exc})") from None
    if len(data) > MAX_CONFIG_BYTES:
        raise ConfigError(f"{path}: larger than {MAX_CONFIG_BYTES} bytes")
    return data


def parse_config(raw: bytes, path: Path, base: GatewayConfig | None = None) -> GatewayConfig:
    """Parse and validate the bytes of a config file: all of it, or a ConfigError."""
    try:
        data = yaml.safe_load(raw.decode("utf-8")) or {}
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 ({exc.reason} at byte {exc.start})") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}" if mark else ""
        raise ConfigError(f"{path}: invalid YAML{at}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping")
    if isinstance(data.get("gateway"), dict):
        data = data["gateway"]
    data = {k: v for k, v in data.items() if k in GatewayConfig.model_fields}
    if base is not None:
        data = {**{k: getattr(base, k) for k in GatewayConfig.model_fields if k not in data}, **data}
    try:
        return GatewayConfig(**data)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = ".".join(str(p) for p in err["loc"])
        raise ConfigError(f"{path}: {loc + ': ' if loc else ''}{err['msg']}") from None


Stamp = tuple[int, int, int]  # (inode, mtime_ns, size)


class ProfileStore:
    """The current compiled config; `maybe_reload()` swaps in a new one when the file changed.

    A reload never acts on a half-written file: a changed file is read only once it has stopped
    changing (the same inode, mtime and size at two polls in a row, and unchanged while it is read);
    then the whole text is parsed, validated and compiled, and only a config that passed all of that
    replaces the current one, in one assignment. A file that fails leaves the previous config in force
    and is reported in /health (`last_error`, `reload_errors`), so a typo never turns the guardrails off.
    Writing the file atomically (a temporary file renamed over it) is still the right way to edit it.
    """

    def __init__(
        self,
        base: GatewayConfig,
        registry: DetectorRegistry,
        models: ModelCache,
        path: Path | None = None,
        default_specs: Sequence[DetectorSpec] | None = None,
    ) -> None:
        self.base = base
        self.default_specs = default_specs
        self.registry = registry
        self.models = models
        self.path = path
        self.version = 0
        self.loaded_at = 0.0
        self.last_error: str | None = None
        self.reload_errors = 0
        self._stamp: Stamp | None = None  # of the file the current config came from (or failed on)
        self._pending: Stamp | None = None  # a change seen at the last poll, not yet read
        self._digest: str | None = None
        self._lock = threading.Lock()
        if path is None:
            self.current = self._install(compile_config(base, registry, models, default_specs), None, None)
        else:
            stamp = self._file_stamp()
            raw = _read_bytes(path)
            config = parse_config(raw, path, base)
            compiled = compile_config(config, registry, models, default_specs)
            self.current = self._install(compiled, stamp, hashlib.sha256(raw).hexdigest())

    def _file_stamp(self) -> Stamp | None:
        if self.path is None:
            return None
        try:
            st = os.stat(self.path)
        except OSError:
            return None
        return (st.st_ino, st.st_mtime_ns, st.st_size)

    def _install(self, compiled: CompiledConfig, stamp: Stamp | None, digest: str | None) -> CompiledConfig:
        self._stamp, self._digest, self._pending = stamp, digest, None
        self.version += 1
        self.loaded_at = time.time()
        self.last_error = None
        self.current = compiled
        return compiled

    def maybe_reload(self) -> bool:
        """Poll the file; True when a new config is now in force. Safe to call from a worker thread."""
        if self.path is None:
            return False
        with self._lock:
            stamp = self._file_stamp()
            if stamp is None or stamp == self._stamp:
                self._pending = None
                return False
            if stamp != self._pending:  # changed since the last poll: wait until it stops changing
                self._pending = stamp
                return False
            try:
                raw = _read_bytes(self.path)
            except ConfigError as exc:
                return self._failed(stamp, str(exc))
            if self._file_stamp() != stamp:  # written to while we read it
                self._pending = None
                return False
            digest = hashlib.sha256(raw).hexdigest()
            if digest == self._digest:  # touched, not changed
                self._stamp, self._pending = stamp, None
                return False
            try:
                config = parse_config(raw, self.path, self.base)
                compiled = compile_config(config, self.registry, self.models, self.default_specs)
            except ConfigError as exc:
                return self._failed(stamp, str(exc))
            except Exception as exc:  # a detector constructor that raises: same as a bad file
                return self._failed(stamp, f"{self.path}: cannot compile ({type(exc).__name__}: {exc})")
            self._install(compiled, stamp, digest)
            return True

    def _failed(self, stamp: Stamp, message: str) -> bool:
        self._stamp, self._pending = stamp, None  # do not retry the same bad file at every poll
        self.last_error = message
        self.reload_errors += 1
        return False
