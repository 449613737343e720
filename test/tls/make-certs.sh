#!/usr/bin/env bash
# Makes the certificates of a local TLS cluster and its tests with openssl, into DIR (default
# ./tls): two CAs (ca, and other-ca, which the cluster does not trust) and, signed by each, a
# member certificate (server and client use, for 127.0.0.1 and localhost: a member shows it to
# clients and to peers, and presents it when it dials a peer) and a client certificate.
#
#   ca.pem            the trusted CA          other-ca.pem          a CA the cluster does not trust
#   member.pem/-key   signed by ca            other-member.pem/-key signed by other-ca
#   client.pem/-key   CN=root, signed by ca   other-client.pem/-key CN=root, signed by other-ca
#   alice.pem/-key    CN=alice, signed by ca  (a limited user under --client-cert-auth)
#
# `make-certs.sh DIR renew` issues a new member.pem/member-key.pem from DIR's existing CA (a
# certificate renewed on disk, which members pick up without a restart).
#
# Keys are EC P-256, made fresh on every run; nothing here is meant to be committed.
set -euo pipefail
dir=${1:-tls}
mode=${2:-all}
mkdir -p "$dir"
cd "$dir"
days=${QKV_CERT_DAYS:-3650}

ca() { # name cn
  openssl ecparam -name prime256v1 -genkey -noout -out "$1-key.pem"
  openssl req -x509 -new -key "$1-key.pem" -sha256 -days "$days" -subj "/CN=$2" \
    -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign -out "$1.pem" 2>/dev/null
}

cert() { # name cn ca extendedKeyUsage [subjectAltName]
  openssl ecparam -name prime256v1 -genkey -noout -out "$1-key.pem"
  openssl req -new -key "$1-key.pem" -subj "/CN=$2" -out "$1.csr" 2>/dev/null
  {
    echo "basicConstraints=CA:FALSE"
    echo "keyUsage=critical,digitalSignature,keyEncipherment"
    echo "extendedKeyUsage=$4"
    if [ -n "${5:-}" ]; then echo "subjectAltName=$5"; fi
  } >"$1.ext"
  openssl x509 -req -in "$1.csr" -CA "$3.pem" -CAkey "$3-key.pem" -CAcreateserial -sha256 -days "$days" \
    -extfile "$1.ext" -out "$1.pem" 2>/dev/null
  rm -f "$1.csr" "$1.ext"
}

if [ "$mode" = renew ]; then
  # Written beside, then renamed over the old files: a member never reads a half-written one.
  cert member.new member ca serverAuth,clientAuth 'IP:127.0.0.1,DNS:localhost'
  mv member.new-key.pem member-key.pem
  mv member.new.pem member.pem
  rm -f ./*.srl
  chmod 600 ./*-key.pem
  exit 0
fi

ca ca 'qkv test CA'
ca other-ca 'another CA'
cert member member ca serverAuth,clientAuth 'IP:127.0.0.1,DNS:localhost'
cert client root ca clientAuth
cert alice alice ca clientAuth
cert other-member member other-ca serverAuth,clientAuth 'IP:127.0.0.1,DNS:localhost'
cert other-client root other-ca clientAuth
rm -f ./*.srl
chmod 600 ./*-key.pem
