#!/usr/bin/env bash
# What tests/it/syslog.rs needs: Debian's rsyslog with its GnuTLS stream
# driver (the receiver), and openssl (the test CA). The service is not
# started: the tests run their own rsyslogd.
set -euo pipefail
if ! command -v rsyslogd >/dev/null || ! command -v openssl >/dev/null \
   || ! dpkg-query -W -f='${Status}' rsyslog-gnutls 2>/dev/null | grep -q 'ok installed'; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends rsyslog rsyslog-gnutls openssl >/dev/null
fi
rsyslogd -v | sed -n 1p
