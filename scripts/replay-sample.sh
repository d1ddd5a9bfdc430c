#!/usr/bin/env bash
# Replays the bundled samples through each installed pillar, so a fresh `make run` has something to show.
set -euo pipefail
tutela="$1"
here="$(cd "$(dirname "$0")/.." && pwd)"
echo "replaying bundled samples from $here/samples"

# DNS: a Zeek dns.log and a pcap with the configured (default: all registered) detectors, and a list of
# names with the sample blocklist and protected brands. Exit code 1 only means "blocked something".
if [ -d "$here/samples/dns" ]; then
  (cd "$here" && {
    "$tutela" dns replay samples/dns/dns.log --limit 10 || [ $? -eq 1 ]
    "$tutela" dns replay samples/dns/capture.pcap --limit 10 || [ $? -eq 1 ]
    "$tutela" --config samples/dns/config.yaml dns replay samples/dns/names.txt --limit 10 || [ $? -eq 1 ]
  })
fi
"$tutela" events stats
