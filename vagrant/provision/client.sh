#!/bin/sh
# The client: curl and a load generator, nothing else.
set -eu
apt-get update -q
DEBIAN_FRONTEND=noninteractive apt-get install -y -q curl wrk mariadb-client
