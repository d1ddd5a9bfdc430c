"""DNS takeover prevention: the dangling-DNS scanner, the hijack guard, fast-flux and wildcard scores,
and passive DNS.

Modules, one concept each:
  fingerprints  the data-driven table of cloud services whose unclaimed resources can be taken over
  zonefile      bounded zone-file and AXFR reading into `ZoneRecord`s
  client        an asyncio stub client that multiplexes many queries over one UDP socket
  dangling      the scanner: classifies each record's target (NXDOMAIN, unregistered, unclaimed, released)
  report        JSON, SARIF 2.1.0 and table output; saved findings under TUTELA_HOME
  baseline      expected answer sets (pinned or learned on first use) and their persistence
  detectors     dns.hijack and dns.fastflux (response side), dns.dangling (request side)
  passive       passive DNS: (first seen, last seen, count) per (name, type, answer), batched into the store
"""
