#!/usr/bin/env bash
# run.sh - run the xdpkit benchmark harness (needs root).
#
#   sudo ./run.sh            # everything, < 10 min; updates README.md's results block
#   sudo ./run.sh -quick     # peers, the fast path and the LB at 64 B, < 3 min
#   sudo ./run.sh -help      # all flags
set -eu
cd "$(dirname "${BASH_SOURCE[0]}")"
export PATH=$PATH:/usr/local/go/bin
exec go run ./cmd/bench "$@"
