#
# Redoes every calculation of the session with openssl and python3 (standard library only), from
# the files in this directory, and prints one line per check:
#   ok   CHECK: what was recomputed, and that it equals what was sent and what iotls found
#   FAIL CHECK: what differs (the script then exits 1)
#   n/a  CHECK: a check that could not happen in this session, and why
# It runs from any directory: it works in its own. Every command it runs can be run by hand here.
#
#   bash reproduce.sh             every check
#   bash reproduce.sh CHECK       one check: server_kx_signature, certificate_verify, session_hash,
#                                 master_secret, key_block, records, client_finished,
#                                 server_finished (the script still computes what CHECK needs,
#                                 e.g. the keys that decrypt a Finished, and shows CHECK's lines)
#
# The files (all written by iotls from the trace of the session):
#   NN-<side>-<Msg>.bin       each handshake message as sent, header included (Finished decrypted)
#   certs/<side>-<i>.der|.pem each certificate of each side's chain (0 = the leaf)
#   client_random.bin, server_random.bin   bytes 6..38 of the ClientHello and the ServerHello
#   server_kx_signed.bin      client_random ‖ server_random ‖ server_kx_params.bin (the ECDHE
#                             parameters): what the ServerKeyExchange signature covers
#   server_kx_signature.sig, broker-public-key.pem      that signature, and the broker's key
#   certificate_verify_signed.bin   every handshake message before the CertificateVerify
#   certificate_verify.sig, device-public-key.pem       that signature, and the device's key
#   keylog.txt                the key-log line (CLIENT_RANDOM client_random master_secret): an input
#   session_hash_transcript.bin     ClientHello … ClientKeyExchange (extended master secret)
#   client_write_key.hex, server_write_key.hex, client_write_IV.hex, server_write_IV.hex,
#   iotls/key_block.hex       iotls's key block and its parts
#   records/<side>-NN.record  each encrypted record as sent; .encrypted its encrypted part alone;
#                             .iotls-plaintext what iotls decrypted; .plaintext what this script did
#   client_finished_transcript.bin, server_finished_transcript.bin   what each Finished hashes
#   tls12.py                  the TLS 1.2 PRF, GHASH and Poly1305 (AES and ChaCha20 are openssl's)
# Started by sh (dash): run again under bash, which the script needs.
if [ -z "${BASH_VERSION:-}" ]; then exec bash "$0" "$@"; fi
set -u
checks="server_kx_signature certificate_verify session_hash master_secret key_block records client_finished server_finished"
only=${1:-}
if [ $# -gt 1 ] || { [ -n "$only" ] && [[ " $checks " != *" $only "* ]]; }; then
  echo "reproduce.sh: no check named '$*'; give one of: $checks (or nothing, for all)" >&2
  exit 2
fi
cd "$(dirname "$0")" || exit 3
for tool in openssl python3; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "reproduce.sh: $tool is not installed; install it to redo the calculations" >&2
    exit 3
  fi
done
rm -f records/*.plaintext
failures=0
# Whether a line (CHECK: …) is of the check asked for; `records` is every `record …` line.
shown() {
  local name=${1%%:*}
  [ -z "$only" ] || [ "$name" = "$only" ] || { [ "$only" = records ] && [ "${name%% *}" = record ]; }
}
ok() { shown "$*" || return 0; printf 'ok   %s\n' "$*"; }
fail() { shown "$*" || return 0; printf 'FAIL %s\n' "$*"; failures=$((failures + 1)); }
na() { shown "$*" || return 0; printf 'n/a  %s\n' "$*"; }
# A file as lower-case hex.
hexof() { od -An -v -tx1 "$1" | tr -d ' \n'; }
# LENGTH bytes of FILE from OFFSET: part FILE OFFSET LENGTH
part() { tail -c +$(($2 + 1)) "$1" | head -c "$3"; }
# The public key (SubjectPublicKeyInfo, DER, hex) of a certificate, and of a public key file.
key_of_cert() { openssl x509 -in "$1" -pubkey -noout | openssl pkey -pubin -outform DER | od -An -v -tx1 | tr -d ' \n'; }
key_of_file() { openssl pkey -pubin -in "$1" -outform DER | od -An -v -tx1 | tr -d ' \n'; }

# check_signature CHECK WHO CERT PUBKEY SIGNATURE SIGNED HASH DIGEST SCHEME NOTE COMMAND...
# The public key is the certificate's; HASH(SIGNED) is iotls's DIGEST; COMMAND verifies.
check_signature() {
  local check=$1 who=$2 cert=$3 pub=$4 sig=$5 signed=$6 hash=$7 digest=$8 scheme=$9 note=${10}
  shift 10
  local from_cert from_file got
  from_cert=$(key_of_cert "$cert" 2>/dev/null)
  from_file=$(key_of_file "$pub" 2>/dev/null)
  if [ -z "$from_cert" ] || [ "$from_cert" != "$from_file" ]; then
    fail "$check: $pub is not the public key of $cert"
    return
  fi
  if [ "$hash" != none ]; then
    got=$(openssl dgst -"$hash" "$signed" | sed 's/.*= //')
    if [ "$got" != "$digest" ]; then
      fail "$check: $hash($signed) is $got, iotls says $digest"
      return
    fi
  fi
  if "$@" >/dev/null 2>&1; then
    ok "$check: openssl verifies $who's $scheme signature over $(wc -c <"$signed" | tr -d ' ') bytes ($hash $digest) with the key of $cert — $note"
  else
    fail "$check: openssl does not verify $who's $scheme signature ($sig) over $signed with the key of $cert"
  fi
}

# check_record NAME AEAD KEY IV SEQ BASE IOTLS_NONCE IOTLS_AAD COMMAND...
# Decrypts BASE.record with this script's own keys and checks its tag (tls12.py), compares with
# iotls's nonce, additional data and plaintext, then runs COMMAND (the one-line decryption the
# trace records, with iotls's key file) and compares its output.
check_record() {
  local name=$1 base=$6 said
  local args=("${@:2:7}")
  shift 8
  if ! said=$(python3 tls12.py record "${args[@]}" 2>&1); then
    fail "$name: $said"
  elif ! "$@" 2>/dev/null | cmp -s - "$base.plaintext"; then
    fail "$name: the trace's one-line command ($1 … $base.encrypted) does not give that plaintext"
  else
    ok "$name: $said"
  fi
}
