#!/usr/bin/env sh
# Create, once, the private CA and the broker certificate that docker compose's TLS uses, with
# nothing but openssl (nothing is downloaded). Existing files are kept, so running it again
# only fills in what is missing: delete broker/broker.* to re-issue the broker certificate
# from the same CA (clients keep trusting it); delete the whole directory for a new CA.
#
# usage: deploy/init-tls.sh [DIR]            (default: deploy/tls, git-ignored)
#
#   DIR/ca.key                 the CA's private key (0600): stays on this host, never mounted
#   DIR/ca.crt                 the CA certificate every fedmq service verifies the broker with
#   DIR/broker/ca.crt          the same CA certificate, for the broker (ssl_options.cacertfile)
#   DIR/broker/broker.crt      the broker's certificate, signed by the CA
#   DIR/broker/broker.key      its private key (0600); only DIR/broker is mounted into the broker
#
# The broker certificate names every `hostname:` of docker-compose.yml and, if it is there,
# docker-compose.cluster.yml (the names the services connect to), plus localhost and
# 127.0.0.1 (the ports published on this host) and any of FEDMQ_TLS_EXTRA_NAMES (DNS names,
# space-separated) for clients that reach the broker under another name.
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
dir=${1:-$root/deploy/tls}
CA_DAYS=${FEDMQ_TLS_CA_DAYS:-3650}
BROKER_DAYS=${FEDMQ_TLS_BROKER_DAYS:-397}

command -v openssl > /dev/null || { echo "init-tls: openssl is required" >&2; exit 1; }
umask 077
mkdir -p "$dir/broker"
chmod 700 "$dir" "$dir/broker"

hostnames() {
  for file in "$root/docker-compose.yml" "$root/docker-compose.cluster.yml"; do
    if [ -f "$file" ]; then
      sed -n 's/^[[:space:]]*hostname:[[:space:]]*\([A-Za-z0-9.-]*\).*/\1/p' "$file"
    fi
  done
  echo localhost
  for name in ${FEDMQ_TLS_EXTRA_NAMES:-}; do echo "$name"; done
}

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
names=$(hostnames | awk 'NF && !seen[$0]++ { printf "%sDNS:%s", sep, $0; sep = ", " }')
cat > "$work/openssl.cnf" <<EOF
[req]
distinguished_name = subject
prompt = no
[subject]
CN = fedmq
[ca]
basicConstraints = critical, CA:TRUE, pathlen:0
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[broker]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = $names, IP:127.0.0.1
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
EOF

new_key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2> /dev/null; }

if [ ! -e "$dir/ca.key" ]; then
  rm -f "$dir/ca.crt" "$dir/broker/broker.crt" "$dir/broker/broker.key"  # a new CA: new leaves
  new_key "$dir/ca.key"
  openssl req -new -x509 -config "$work/openssl.cnf" -extensions ca -key "$dir/ca.key" \
    -subj "/CN=fedmq compose CA" -days "$CA_DAYS" -sha256 -out "$dir/ca.crt"
  echo "init-tls: created the CA in $dir (ca.key stays on this host)"
fi
if [ ! -e "$dir/broker/broker.key" ] || [ ! -e "$dir/broker/broker.crt" ]; then
  new_key "$dir/broker/broker.key"
  openssl req -new -config "$work/openssl.cnf" -key "$dir/broker/broker.key" \
    -subj "/CN=rabbitmq" -out "$work/broker.csr"
  openssl x509 -req -in "$work/broker.csr" -CA "$dir/ca.crt" -CAkey "$dir/ca.key" \
    -set_serial "0x$(openssl rand -hex 16)" -days "$BROKER_DAYS" -sha256 \
    -extfile "$work/openssl.cnf" -extensions broker -out "$dir/broker/broker.crt" 2> /dev/null
  echo "init-tls: issued the broker certificate for $names, IP:127.0.0.1"
fi
cp "$dir/ca.crt" "$dir/broker/ca.crt"
chmod 600 "$dir/ca.key" "$dir/broker/broker.key"
chmod 644 "$dir/ca.crt" "$dir/broker/ca.crt" "$dir/broker/broker.crt"
openssl x509 -in "$dir/broker/broker.crt" -noout -enddate | sed 's/^notAfter=/init-tls: broker certificate valid until /'
