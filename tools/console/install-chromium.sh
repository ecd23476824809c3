#!/usr/bin/env bash
# Idempotently install the browser the console's browser test drives (tools/console/browser.ts): Debian's chromium
# package, via apt-get when /usr/bin/chromium (or $CHROMIUM) is missing and running as root. playwright-core drives
# it; no browser is ever downloaded from elsewhere. On failure prints one sentence naming what is missing, exits 1.
set -euo pipefail

CHROMIUM="${CHROMIUM:-/usr/bin/chromium}"
die() { echo "install: $*" >&2; exit 1; }

if [ ! -x "$CHROMIUM" ]; then
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    echo "install: installing chromium with apt-get (about 100 MB, once per machine)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -q chromium >/dev/null 2>&1 \
      || { apt-get update -q >/dev/null 2>&1 && apt-get install -y -q chromium >/dev/null 2>&1; } \
      || die "chromium is missing and 'apt-get install -y chromium' failed; install the Debian package chromium."
  else
    die "chromium is missing at $CHROMIUM; install the Debian package chromium (apt-get install -y chromium, as root) or set CHROMIUM."
  fi
  [ -x "$CHROMIUM" ] || die "the chromium package did not install $CHROMIUM; set CHROMIUM to the browser's path."
fi
echo "install: $("$CHROMIUM" --version 2>/dev/null | head -n 1) ($CHROMIUM)"
