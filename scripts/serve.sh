#!/usr/bin/env bash
# Run the bridge on its embedded default: SQLite under ./var/, delivering to a local sandbox of the
# Facturation.pro API (no account needed). Creates .venv/ if needed, migrates, then serves on
# http://127.0.0.1:8000 (sandbox on http://127.0.0.1:8089, its ledger at /__sandbox/ledger).
# Set FACTURATION_API_URL (and the other FACTURATION_* variables) to use the real API instead.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --disable-pip-version-check -c constraints.txt -e .
mkdir -p var

if [ -z "${FACTURATION_API_URL:-}" ]; then
  SANDBOX_PORT=${SANDBOX_PORT:-8089}
  .venv/bin/facturation-sandbox --port "$SANDBOX_PORT" \
    --login demo --key demo-key --firm-id 1 >var/sandbox.log 2>&1 &
  SANDBOX_PID=$!
  trap 'kill "$SANDBOX_PID" 2>/dev/null || true' EXIT
  export FACTURATION_API_URL="http://127.0.0.1:$SANDBOX_PORT"
  export FACTURATION_API_LOGIN=demo FACTURATION_API_KEY=demo-key FACTURATION_FIRM_ID=1
  export FACTURATION_USER_AGENT=${FACTURATION_USER_AGENT:-"facturation-bridge demo (demo@example.com)"}
  export STRIPE_WEBHOOK_SECRETS=${STRIPE_WEBHOOK_SECRETS:-whsec_demo}
  export SHOPIFY_WEBHOOK_SECRETS=${SHOPIFY_WEBHOOK_SECRETS:-shopify_demo_secret}
  export BRIDGE_ADMIN_TOKEN=${BRIDGE_ADMIN_TOKEN:-demo-admin-token}
  echo "sandbox: $FACTURATION_API_URL (ledger: $FACTURATION_API_URL/__sandbox/ledger)"
fi

.venv/bin/facturation-bridge serve --port "${PORT:-8000}" "$@"
