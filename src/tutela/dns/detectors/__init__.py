"""The DNS pillar's built-in detectors, each registered under `tutela.detectors` like any plugin.

A DNS detector is an ordinary `tutela.core.detector.Detector` of pillar "dns" with two extra
class attributes the sensor reads (both optional):

- `side: ClassVar[str]`: "request" (the default) to judge a `DnsQuery` before it is forwarded,
  or "response" to judge a `DnsResponse` (the answers) before it is returned to the client.
- `cacheable: ClassVar[bool]`: True (the default) when the findings depend only on the name and
  type (request side) or on the name, type, rcode and answer data (response side), so the sensor
  may cache them for its verdict TTL. Behavioural detectors that keep per-client state or history
  set it to False and run on every query.
- `rcodes: ClassVar[frozenset[int]]` (response side, optional): only answers with these rcodes are
  shown to the detector (`dns.nxdomain_burst` sets {3}); without it, every answer is.
- `sees_blocked: ClassVar[bool]` (live response side, default False): also shown the sensor's own
  blocks, as the NXDOMAIN the client receives (`dns.dga_session`: a DGA name blocked at HIGH never
  gets an upstream answer, yet is the strongest sign of an infected client).

- `run_on_cache_hit: bool` (only read when `cacheable` is False; default True): False for a
  behavioural detector that learns nothing from a repeat of a name judged within the verdict TTL
  (distinct-name counting, first-seen): it then runs only when the name misses the verdict cache,
  which keeps repeated names cheap. May be set per instance (it can depend on config).

- `active: bool` (optional, per instance): False when the detector's config gives it nothing to do
  (`dns.hijack` without protected zones); the sensor then leaves it out of the pipeline.

A detector may also define `warmup()`, which the sensor calls before it listens (load lists and
tables there, not in the constructor, so the first query is not slow), and `close()`, which it
calls at shutdown (to persist state).
"""
