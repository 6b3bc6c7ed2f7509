#!/usr/bin/env bash
# Installs what the browser tests need: Debian's Chromium (Playwright's own browser download cannot work
# offline) and the Python packages of the workspace (Playwright for Python is a dev dependency).
# Prints the Chromium path on its last line. Idempotent: does nothing that is already done.
set -euo pipefail

find_chromium() {
    for candidate in "${SOUS_CHROMIUM:-}" /usr/bin/chromium /usr/bin/chromium-browser /usr/lib/chromium/chromium; do
        if [[ -n "$candidate" && -x "$candidate" ]]; then
            echo "$candidate"
            return 0
        fi
    done
    return 1
}

if ! find_chromium >/dev/null; then
    if ! command -v apt-get >/dev/null; then
        echo "Chromium is missing and apt-get is not available: install Chromium and set SOUS_CHROMIUM" >&2
        exit 1
    fi
    SUDO=""
    if [[ "$(id -u)" != "0" ]]; then
        SUDO="sudo"
    fi
    echo "installing Chromium (apt-get) ..."
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core >/dev/null
fi

cd "$(dirname "$0")/.."
make --no-print-directory install >/dev/null
find_chromium
