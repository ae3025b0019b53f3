#!/usr/bin/env bash
# Writes a throwaway PKI for the TLS tests into DIR: ca.{pem,key}; server.{pem,key} for
# 127.0.0.1 and localhost, signed by ca; client.{pem,key} signed by ca; and
# rogue-ca.pem with rogue-client.{pem,key}, a client that ca did not sign.
set -euo pipefail
dir=$1
mkdir -p "$dir" && cd "$dir"
quiet() { "$@" >/dev/null 2>&1 || { echo "make_certs: $* failed" >&2; "$@"; exit 1; }; }

authority() {  # NAME
  quiet openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
    -subj "/CN=normd test $1" -keyout "$1.key" -out "$1.pem"
}
leaf() {  # NAME CA EXTENSIONS
  quiet openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
    -subj "/CN=$1" -keyout "$1.key" -out "$1.csr"
  printf '%s\n' "$3" > "$1.ext"
  quiet openssl x509 -req -in "$1.csr" -CA "$2.pem" -CAkey "$2.key" -CAcreateserial -days 2 \
    -extfile "$1.ext" -out "$1.pem"
  rm -f "$1.csr" "$1.ext"
}

authority ca
authority rogue-ca
leaf server ca "subjectAltName=IP:127.0.0.1,DNS:localhost
extendedKeyUsage=serverAuth"
leaf client ca "extendedKeyUsage=clientAuth"
leaf rogue-client rogue-ca "extendedKeyUsage=clientAuth"
