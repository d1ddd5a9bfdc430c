"""The sensor as a platform service: `tutela up` starts `tutela dns serve --listen ...`."""

from __future__ import annotations

from tutela.core.services import ServiceSpec
from tutela.dns.settings import DEFAULT_LISTEN

SERVICE = ServiceSpec(
    name="dns",
    pillar="dns",
    description="inline DNS security sensor (forwarding resolver on UDP and TCP)",
    default_listen=DEFAULT_LISTEN,
    protocol="dns",
    argv=lambda settings, listen: ["dns", "serve", "--listen", listen],
)
