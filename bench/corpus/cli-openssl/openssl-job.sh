#!/bin/sh
# openssl-job: a few common openssl tasks, each checked.
set -eu

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"

# 1. A short benchmark (openssl speed times itself with alarm()/SIGALRM).
openssl speed -seconds 1 -bytes 1024 sha256 2>/dev/null | tail -n 1

# 2. A key, a self-signed certificate, and its verification.
openssl genpkey -algorithm ED25519 -out key.pem 2>/dev/null
openssl req -x509 -new -key key.pem -subj '/CN=corpus.example.invalid' -days 2 -out cert.pem
openssl verify -CAfile cert.pem cert.pem > /dev/null

# 3. Sign and verify a file.
head -c 65536 /dev/urandom > data.bin
openssl pkeyutl -sign -inkey key.pem -rawin -in data.bin -out data.sig
openssl pkeyutl -verify -certin -inkey cert.pem -rawin -in data.bin -sigfile data.sig > /dev/null

# 4. Symmetric round trip and digests.
openssl rand -hex 32 > pass.txt
openssl enc -aes-256-cbc -pbkdf2 -salt -pass file:pass.txt -in data.bin -out data.enc
openssl enc -d -aes-256-cbc -pbkdf2 -pass file:pass.txt -in data.enc -out data.out
cmp data.bin data.out
a=$(openssl dgst -sha256 -r data.bin | cut -d' ' -f1)
b=$(sha256sum data.bin | cut -d' ' -f1)
[ "$a" = "$b" ] || { echo "openssl-job: digest mismatch" >&2; exit 1; }

echo "openssl-job: ok: $(openssl version), cert $(openssl x509 -in cert.pem -noout -fingerprint -sha256 | cut -c1-40)..."
