"""Judging text: a profile's channel pipeline over a list of text items, with timeouts and health.

The texts of one channel (every user message of a request, say) are joined into one TextSubject
so a 10,000-message conversation costs one detector pass, not 10,000; finding spans map back to
the item they fall in, which is what redaction rewrites. Detectors run in a small thread pool
under the profile's timeout; an exception or a timeout becomes a DetectorFailure that the policy
fails open or closed, and every failure is counted per detector for /health and /metrics.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from tutela.core.detector import ScanContext
from tutela.core.findings import Action, DetectorFailure, Finding, Verdict
from tutela.runtime.gateway.profiles import SUBJECT_KIND, ChannelPlan, Profile
from tutela.runtime.subjects import TextSubject

SEPARATOR = "\n\n"


@dataclass(frozen=True, slots=True)
class Item:
    """One piece of text in a request or answer, and where it is ("messages[3].content")."""

    location: str
    text: str


@dataclass(slots=True)
class Judgement:
    channel: str
    verdict: Verdict
    items: Sequence[Item] = ()
    redacted: list[str] | None = None  # per item, when the action is redact
    latency_ms: float = 0.0

    @property
    def action(self) -> Action:
        return self.verdict.action


@dataclass
class DetectorHealth:
    runs: int = 0
    failures: int = 0
    timeouts: int = 0
    consecutive_failures: int = 0
    last_ok: float | None = None
    last_failure: float | None = None
    last_error: str | None = None

    def state(self) -> str:
        if self.consecutive_failures:
            return "failing"
        return "ok" if self.runs else "idle"

    def to_dict(self) -> dict[str, Any]:
        return {
            "state": self.state(),
            "runs": self.runs,
            "failures": self.failures,
            "timeouts": self.timeouts,
            "consecutive_failures": self.consecutive_failures,
            "last_ok": self.last_ok,
            "last_failure": self.last_failure,
            "last_error": self.last_error,
        }


@dataclass
class HealthBook:
    detectors: dict[str, DetectorHealth] = field(default_factory=dict)
    fail_open: int = 0
    fail_closed: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, ids: Sequence[str], failures: Sequence[DetectorFailure], on_error: str) -> None:
        now = time.time()
        failed = {f.detector: f for f in failures}
        with self._lock:
            for det in ids:
                h = self.detectors.get(det)
                if h is None:  # not setdefault: that builds a DetectorHealth per detector per judgement
                    h = self.detectors[det] = DetectorHealth()
                h.runs += 1
                f = failed.get(det)
                if f is None:
                    h.consecutive_failures = 0
                    h.last_ok = now
                    continue
                h.failures += 1
                h.consecutive_failures += 1
                h.last_failure = now
                h.last_error = f"{f.error}: {f.message}"[:300]
                if f.error == "Timeout":
                    h.timeouts += 1
            if failures:
                if on_error == "closed":
                    self.fail_closed += len(failures)
                else:
                    self.fail_open += len(failures)


def redact_items(items: Sequence[Item], findings: Sequence[Finding], offsets: Sequence[int]) -> list[str]:
    """Replace each finding's span by `<CATEGORY>` inside the item it falls in."""
    per_item: dict[int, list[tuple[int, int, str]]] = {}
    for f in findings:
        if f.span is None:
            continue
        for idx, start in enumerate(offsets):
            end = start + len(items[idx].text)
            if f.span.start < end and f.span.end > start:
                s, e = max(f.span.start, start) - start, min(f.span.end, end) - start
                per_item.setdefault(idx, []).append((s, e, f.category.upper()))
    out = [it.text for it in items]
    for idx, spans in per_item.items():
        text = out[idx]
        merged: list[tuple[int, int, str]] = []
        for s, e, label in sorted(spans):
            if merged and s < merged[-1][1]:
                ps, pe, pl = merged[-1]
                merged[-1] = (ps, max(pe, e), pl)
            else:
                merged.append((s, e, label))
        for s, e, label in reversed(merged):
            text = f"{text[:s]}<{label}>{text[e:]}"
        out[idx] = text
    return out


class Guard:
    """Runs a profile's channel over items. One per gateway; shares a thread pool and a health book."""

    def __init__(self, threads: int = 4) -> None:
        self.health = HealthBook()
        self._pool = concurrent.futures.ThreadPoolExecutor(max_workers=threads, thread_name_prefix="tutela-detect")

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

    def warm(self, profiles: Sequence[Profile]) -> None:
        """Run every configured detector once on a short text, so models load before the first
        request does; a detector that fails here shows as failing in /health at once."""
        seen: set[int] = set()
        for profile in profiles:
            for channel, plan in profile.channels.items():
                if plan is None:
                    continue
                subject = TextSubject("Hello, how are you today?", SUBJECT_KIND[channel])  # type: ignore[arg-type]
                for det in plan.pipeline.detectors:
                    if id(det) in seen:
                        continue
                    seen.add(id(det))
                    failures: list[DetectorFailure] = []
                    try:
                        list(det.detect(subject, ScanContext(source="warmup")))
                    except Exception as exc:
                        failures.append(DetectorFailure.from_exception(det.id, exc))
                    self.health.record([det.id], failures, profile.config.on_error)

    @staticmethod
    def _scan(plan: ChannelPlan, subject: TextSubject, progress: list[str]) -> tuple[list[Finding], list[Any]]:
        ctx = ScanContext(source="gateway")
        failures: list[DetectorFailure] = []
        for detector in plan.pipeline.detectors:
            progress.append(detector.id)
            try:
                ctx.findings.extend(detector.detect(subject, ctx))
            except Exception as exc:  # a detector bug never loses the request
                failures.append(DetectorFailure.from_exception(detector.id, exc))
        progress.append("")
        return ctx.findings, failures

    async def judge(self, profile: Profile, channel: str, items: Sequence[Item]) -> Judgement:
        plan = profile.plan(channel)
        items = [it for it in items if it.text]
        if plan is None or not items:
            return Judgement(channel, Verdict(action=Action.ALLOW), items)
        t0 = time.perf_counter()
        offsets: list[int] = []
        pos = 0
        for it in items:
            offsets.append(pos)
            pos += len(it.text) + len(SEPARATOR)
        text = items[0].text if len(items) == 1 else SEPARATOR.join(it.text for it in items)
        subject = TextSubject(text, SUBJECT_KIND[channel])  # type: ignore[arg-type]
        progress: list[str] = []
        timeout = profile.config.detector_timeout_ms
        if timeout is None or (plan.inline_ok and len(text) <= profile.config.inline_max_chars):
            findings, failures = self._scan(plan, subject, progress)
        else:
            fut = self._pool.submit(self._scan, plan, subject, progress)
            try:
                findings, failures = await asyncio.wait_for(asyncio.wrap_future(fut), timeout / 1000)
            except TimeoutError:
                stuck = progress[-1] if progress and progress[-1] else "pipeline"
                done = set(progress[:-1])
                findings = []
                failures = [
                    DetectorFailure(detector=stuck, error="Timeout", message=f"still running after {timeout:.0f} ms")
                ]
                failures += [
                    DetectorFailure(detector=d.id, error="Timeout", message="not run: an earlier detector timed out")
                    for d in plan.pipeline.detectors
                    if d.id not in done and d.id != stuck
                ]
        ids = [d.id for d in plan.pipeline.detectors]
        self.health.record(ids, failures, profile.config.on_error)
        verdict = plan.policy.decide(findings, failures)
        judgement = Judgement(channel, verdict, items)
        if verdict.action is Action.REDACT:
            to_redact = [f for f in findings if plan.policy.action_for(f)[0] is Action.REDACT]
            if any(f.span is None for f in to_redact):  # cannot redact what has no span: block instead
                reasons = (*verdict.reasons, "a finding to redact has no span -> block")
                judgement.verdict = Verdict(
                    action=Action.BLOCK, findings=verdict.findings, failures=verdict.failures, reasons=reasons
                )
            else:
                judgement.redacted = redact_items(items, to_redact, offsets)
        judgement.latency_ms = (time.perf_counter() - t0) * 1000
        return judgement
