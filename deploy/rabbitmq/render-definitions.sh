#!/usr/bin/env bash
# Render definitions.template.json with the passwords from the environment (or *_FILE secret files):
# every @NAME@ placeholder in the template (one per user: FEDMQ_ADMIN_PASSWORD,
# FEDMQ_WORKER_3_PASSWORD, ...) is replaced by the variable NAME.
# usage: render-definitions.sh TEMPLATE OUTPUT
set -euo pipefail
template=$1
output=$2

# Passwords also travel inside AMQP URLs: only URL-safe characters, and long enough.
pattern='^[A-Za-z0-9._~-]{12,128}$'
substitutions=()
for name in $(grep -o '@FEDMQ_[A-Z0-9_]*_PASSWORD@' "$template" | tr -d '@' | sort -u); do
  file_var="${name}_FILE"
  if [ -n "${!file_var:-}" ]; then
    value=$(cat "${!file_var}")
  else
    value=${!name:-}
  fi
  if ! [[ $value =~ $pattern ]]; then
    echo "render-definitions: $name must be 12-128 characters from A-Z a-z 0-9 . _ ~ - (set it in .env)" >&2
    exit 1
  fi
  substitutions+=(-e "s|@${name}@|${value}|g")
done

umask 077
sed "${substitutions[@]}" "$template" > "$output.tmp"
mv "$output.tmp" "$output"
