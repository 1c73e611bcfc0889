#!/usr/bin/env bash
# Sets up everything (scripts/setup.sh) and runs every test: unit, kernel (real BPF, as root)
# and integration. Prints the runner's report and a closing "N passed, N failed" line.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
"$EBBFLOW_ROOT/scripts/setup.sh"
cd "$EBBFLOW_ROOT"
npm run -s typecheck
npm run -s lint
npm test
