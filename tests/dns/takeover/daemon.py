"""Start a DNS server binary on loopback for a test, wait until it answers, stop it: shared by the launchers."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path


class LoopbackDaemon:
    """A server process answering on 127.0.0.1:`port`; subclasses set `name`, `port` and `dir`."""

    name = "server"
    port: int
    dir: Path
    proc: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> tuple[str, int]:
        return "127.0.0.1", self.port

    def launch(self, argv: list[str], probe: str, *, need_answer: bool, timeout: float, log: str = "") -> None:
        """Run `argv` and wait until a SOA query for `probe` gets a reply (with records if `need_answer`)."""
        import dns.message
        import dns.query

        self.proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                err = self.proc.stderr.read().decode() if self.proc.stderr else ""
                logged = (self.dir / log).read_text() if log and (self.dir / log).exists() else ""
                raise RuntimeError(f"{self.name} exited: {err} {logged}")
            try:
                r = dns.query.udp(dns.message.make_query(probe, "SOA"), "127.0.0.1", port=self.port, timeout=timeout)
                if r.answer or not need_answer:
                    return
            except Exception:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"{self.name} did not answer within 15 s")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
            self.proc = None
