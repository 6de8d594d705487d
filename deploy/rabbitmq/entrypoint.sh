#!/usr/bin/env bash
# fedmq's wrapper around the official image's entrypoint: render the definitions (users,
# permissions, policies) from secrets into a tmpfs, then start RabbitMQ as usual.
set -euo pipefail
mkdir -p /run/fedmq
bash /opt/fedmq/render-definitions.sh /opt/fedmq/definitions.template.json /run/fedmq/definitions.json
if [ "$(id -u)" = 0 ]; then
  chown -R rabbitmq:rabbitmq /run/fedmq  # the image's entrypoint drops to this user
fi
exec docker-entrypoint.sh "$@"
