"""The DNS pillar's built-in detectors, each registered under `tutela.detectors` like any plugin.

A DNS detector is an ordinary `tutela.core.detector.Detector` of pillar "dns" with two extra
class attributes the sensor reads (both optional):

- `side: ClassVar[str]`: "request" (the default) to judge a `DnsQuery` before it is forwarded,
  or "response" to judge a `DnsResponse` (the answers) before it is returned to the client.
- `cacheable: ClassVar[bool]`: True (the default) when the findings depend only on the name and
  type, so the sensor may cache them per (name, type) for its verdict TTL. Behavioural detectors
  that keep per-client state or history set it to False and run on every query.

A detector may also define `close()`, which the sensor calls at shutdown (to persist state).
"""
