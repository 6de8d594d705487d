#!/usr/bin/env sh
# Once: write .env for docker compose with fresh random passwords (an existing .env is kept)
# and create the compose's private CA and broker certificate in deploy/tls (deploy/init-tls.sh;
# existing ones are kept). Both are git-ignored.
set -eu
cd "$(dirname "$0")/.."
sh deploy/init-tls.sh deploy/tls
if [ -e .env ]; then
  echo ".env exists; leaving its passwords alone"
  if ! grep -q '^FEDMQ_TLS_DIR=' .env; then  # an .env from before TLS was on
    echo "FEDMQ_TLS_DIR=./deploy/tls" >> .env
    echo "added FEDMQ_TLS_DIR to .env"
  fi
  exit 0
fi
secret() { head -c 24 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n'; }
umask 077
{
  echo "# written by deploy/init-env.sh; see .env.example"
  echo "FEDMQ_ADMIN_PASSWORD=$(secret)"
  echo "FEDMQ_AGGREGATOR_PASSWORD=$(secret)"
  echo "FEDMQ_MONITOR_PASSWORD=$(secret)"
  # One user per worker service (worker-0 ... worker-7), so no replica can pose as another.
  for i in 0 1 2 3 4 5 6 7; do
    echo "FEDMQ_WORKER_${i}_PASSWORD=$(secret)"
  done
  echo "GRAFANA_ADMIN_PASSWORD=$(secret)"
  echo "FEDMQ_ERLANG_COOKIE=$(secret)"  # docker-compose.cluster.yml: the members' shared cookie
  echo "FEDMQ_TLS_DIR=./deploy/tls"  # deploy/init-tls.sh: the CA and the broker certificate
} > .env
echo "wrote .env (passwords for fedmq-admin, fedmq-aggregator, fedmq-monitor, fedmq-worker-0..7 and Grafana's admin)"
