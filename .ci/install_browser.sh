#!/usr/bin/env bash
# Install Debian's Chromium for the browser test (tests/test_browser.py) when it is missing.
# Never fails the build: without root or apt the browser test skips itself with a reason.
set -u
CHROMIUM="${MINT_TEACH_CHROMIUM:-/usr/bin/chromium}"
if [ -x "$CHROMIUM" ]; then
  echo "install_browser: $CHROMIUM already present"
  exit 0
fi
if [ "$(id -u)" != "0" ]; then
  echo "install_browser: $CHROMIUM missing and not root; skipping (the browser test will skip)"
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "install_browser: $CHROMIUM missing and no apt-get; skipping (the browser test will skip)"
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
if apt-get update -qq && apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core >/dev/null; then
  echo "install_browser: installed $("$CHROMIUM" --version 2>/dev/null || echo chromium)"
else
  echo "install_browser: apt-get could not install chromium; skipping (the browser test will skip)"
fi
exit 0
