#!/bin/sh
# Install Debian's headless-capable Chromium for the browser checks (tests/browser/).
# Runs as part of `make test`. Installs only when /usr/bin/chromium is missing and we are root
# (apt-get, non-interactive, quiet). Always exits 0: without Chromium the browser tests skip
# with a reason, or fail when CI=true.
CHROMIUM=/usr/bin/chromium
if [ -x "$CHROMIUM" ]; then
    exit 0
fi
if [ "$(id -u)" != "0" ]; then
    echo "ensure_chromium: $CHROMIUM is missing and we are not root; browser tests will skip" >&2
    exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "ensure_chromium: $CHROMIUM is missing and apt-get is not available; browser tests will skip" >&2
    exit 0
fi
echo "ensure_chromium: installing Debian chromium (once)" >&2
export DEBIAN_FRONTEND=noninteractive
if ! apt-get install -y -qq --no-install-recommends chromium fonts-liberation >/dev/null 2>&1; then
    # the package lists may be missing or stale on a fresh machine
    apt-get update -qq >/dev/null 2>&1 || true
    apt-get install -y -qq --no-install-recommends chromium fonts-liberation >/dev/null 2>&1 \
        || echo "ensure_chromium: apt-get install chromium failed; browser tests will skip" >&2
fi
exit 0
