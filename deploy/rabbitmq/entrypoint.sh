#!/usr/bin/env bash
# fedmq's wrapper around the official image's entrypoint: render the definitions (users,
# permissions, policies) from secrets into a tmpfs, then start RabbitMQ as usual.
set -euo pipefail
mkdir -p /run/fedmq
# The cluster profile (docker-compose.cluster.yml) names its own template: replicated queues.
template="/opt/fedmq/${FEDMQ_DEFINITIONS_TEMPLATE:-definitions.template.json}"
bash /opt/fedmq/render-definitions.sh "$template" /run/fedmq/definitions.json
# TLS (tls.conf): the CA and broker certificate deploy/init-tls.sh made, copied from their
# read-only mount to where only the rabbitmq user can read the key.
if [ -d /opt/fedmq-tls ]; then
  install -d -m 0700 /run/fedmq/tls
  install -m 0644 /opt/fedmq-tls/ca.crt /opt/fedmq-tls/broker.crt /run/fedmq/tls/
  install -m 0600 /opt/fedmq-tls/broker.key /run/fedmq/tls/
fi
if [ "$(id -u)" = 0 ]; then
  chown -R rabbitmq:rabbitmq /run/fedmq  # the image's entrypoint drops to this user
fi
if [ -n "${FEDMQ_ERLANG_COOKIE:-}" ]; then
  # A cluster member: the members' shared cookie, readable by its owner alone (Erlang refuses
  # a looser one).
  cookie=/var/lib/rabbitmq/.erlang.cookie
  rm -f "$cookie"
  (umask 077 && printf '%s' "$FEDMQ_ERLANG_COOKIE" > "$cookie")
  chmod 400 "$cookie"
  if [ "$(id -u)" = 0 ]; then
    chown rabbitmq:rabbitmq "$cookie"
  fi
fi
exec docker-entrypoint.sh "$@"
