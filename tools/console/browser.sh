#!/usr/bin/env bash
# The web console's browser test (a stage of `npm test`): installs Chromium when it is missing
# (tools/console/install-chromium.sh), builds the console (dist/console/), then drives it in headless Chromium against
# the embedded registry, with auth on and off (tools/console/browser.ts), then company sign-in through a real OpenID
# Provider's login page (tools/console/oidc-browser.ts). Each ends with `console: N passed, M failed`.
#   tools/console/browser.sh                              the checks
#   tools/console/browser.sh --screenshots docs/console   and the screenshots of docs/console-ui.md
set -euo pipefail
cd "$(dirname "$0")/../.."
node_path="$(tools/node/ensure-node24 --path)" # its own statement, so that set -e stops on a failed install
eval "$node_path"
if ! bash tools/console/install-chromium.sh; then
  printf 'FAIL  chromium: not installed (tools/console/install-chromium.sh)\nconsole: 0 passed, 1 failed\n'
  exit 1
fi
npm run -s build -- console
# The robot check pushes with skopeo when it is installed (tools/clients/install.sh, which `npm test` runs before
# this stage), and asks /token for a token otherwise.
status=0
node --import tsx tools/console/browser.ts "$@" || status=$?
node --import tsx tools/console/oidc-browser.ts "$@" || status=$?
exit "$status"
