#!/bin/bash
# Docker HEALTHCHECK for the sample app: exit 0 only when GET /health answers 200.
# bash and its /dev/tcp rather than python3: the check runs every second in every running instance, and a
# python3 start took about 0.1 s of CPU (this takes a few ms), a tenth of a core an instance on a 2-core machine.
{ exec 3<>"/dev/tcp/127.0.0.1/${PORT:-8080}"; } 2>/dev/null || { echo "health check failed: no connection"; exit 1; }
printf 'GET /health HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' >&3
# The app writes the status line, headers and body at once, so the status line is all there is to read.
if ! read -r -t 1.5 _version status _reason <&3; then
    echo "health check failed: no answer within 1.5s"
    exit 1
fi
[ "$status" = 200 ] || { echo "health check failed: status $status"; exit 1; }
