#!/usr/bin/env bash
# Installs the Debian packages the tests and benchmarks need, only where their command is missing.
# Each line: <command to look for> <Debian package>.
set -euo pipefail
need=()
while read -r cmd pkg; do
  [ -z "${cmd:-}" ] && continue
  case "$cmd" in \#*) continue ;; esac
  command -v "$cmd" >/dev/null 2>&1 || need+=("$pkg")
done <<'LIST'
unbound unbound
dig dnsutils
dnsperf dnsperf
nsd nsd
dnsmasq dnsmasq-base
dns2tcpc dns2tcp
iodine iodine
wrk wrk
LIST
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then SUDO=sudo; else SUDO=; fi
  echo "installing Debian packages: ${need[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
