#!/usr/bin/env bash
# Certificates for TLS between the Dask scheduler, the workers and the sweep driver, with openssl:
# a private certificate authority (ca.pem, ca.key: keep ca.key private) and one certificate signed by it
# (node.pem, node.key) that every party presents, plus tls.yaml, the Dask configuration that uses them and
# turns TLS on for epmsweep's clusters (epmsweep.deploy.tls: true).
#   usage: deploy/make-certificates.sh DIR [DAYS]
# Put DIR where every node can read it and no other user can (it is made chmod 700), then copy DIR/tls.yaml
# into ~/.config/dask/ or pass it with `epmsweep run --config DIR/tls.yaml`.
set -euo pipefail
dir=${1:?usage: $0 DIR [DAYS]}
days=${2:-365}
mkdir -p "$dir"
chmod 700 "$dir"
dir=$(cd "$dir" && pwd)
cd "$dir"
openssl req -x509 -newkey rsa:2048 -nodes -days "$days" -subj "/CN=epmsweep-ca" \
    -keyout ca.key -out ca.pem 2>/dev/null
openssl req -newkey rsa:2048 -nodes -subj "/CN=epmsweep-node" -keyout node.key -out node.csr 2>/dev/null
openssl x509 -req -in node.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days "$days" -out node.pem 2>/dev/null
rm -f node.csr ca.srl
chmod 600 ca.key node.key
cat > tls.yaml <<YAML
distributed:
  comm:
    require-encryption: true
    tls:
      ca-file: $dir/ca.pem
      scheduler: {cert: $dir/node.pem, key: $dir/node.key}
      worker: {cert: $dir/node.pem, key: $dir/node.key}
      client: {cert: $dir/node.pem, key: $dir/node.key}
epmsweep:
  deploy:
    tls: true
YAML
echo "$dir/tls.yaml"
