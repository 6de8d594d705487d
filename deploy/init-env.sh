#!/usr/bin/env sh
# Write .env for docker compose with fresh random passwords (once: an existing .env is kept).
set -eu
cd "$(dirname "$0")/.."
if [ -e .env ]; then
  echo ".env exists; leaving it alone"
  exit 0
fi
secret() { head -c 24 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n'; }
umask 077
{
  echo "# written by deploy/init-env.sh; see .env.example"
  echo "FEDMQ_ADMIN_PASSWORD=$(secret)"
  echo "FEDMQ_AGGREGATOR_PASSWORD=$(secret)"
  echo "FEDMQ_WORKER_PASSWORD=$(secret)"
  echo "GRAFANA_ADMIN_PASSWORD=$(secret)"
} > .env
echo "wrote .env (passwords for fedmq-admin, fedmq-aggregator, fedmq-worker and Grafana's admin)"
