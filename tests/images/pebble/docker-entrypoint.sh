#!/bin/sh
# Writes pebble's configuration from the environment, then runs it:
#   PEBBLE_LISTEN      the ACME directory (HTTPS), default 0.0.0.0:14000 (/dir)
#   PEBBLE_MANAGEMENT  the management interface (HTTPS; /roots/0 is the issuing root), default 0.0.0.0:15000
#   PEBBLE_HTTP_PORT   the port HTTP-01 validations connect to, default 80
#   PEBBLE_TLS_PORT    the port TLS-ALPN-01 validations connect to, default 443
set -eu
config=/tmp/pebble-config.json
cat >"$config" <<JSON
{
  "pebble": {
    "listenAddress": "${PEBBLE_LISTEN:-0.0.0.0:14000}",
    "managementListenAddress": "${PEBBLE_MANAGEMENT:-0.0.0.0:15000}",
    "certificate": "/etc/pebble/localhost/cert.pem",
    "privateKey": "/etc/pebble/localhost/key.pem",
    "httpPort": ${PEBBLE_HTTP_PORT:-80},
    "tlsPort": ${PEBBLE_TLS_PORT:-443},
    "ocspResponderURL": "",
    "externalAccountBindingRequired": false
  }
}
JSON
exec pebble -config "$config" "$@"
