#!/bin/sh
# A backend: nginx answering with its own name (the seed's web servers), the
# VIPs on lo with ARP kept quiet for them (direct routing: the backend accepts
# the VIP's packets the balancer sends to its MAC and answers the client
# itself), and on web3 MariaDB with the user the mysql check logs in as.
# Usage: web.sh NAME web|mariadb NET VIP...
set -eu
name=$1 role=$2 net=$3
shift 3

apt-get update -q
DEBIAN_FRONTEND=noninteractive apt-get install -y -q nginx
echo "$name" > /var/www/html/index.html
# The seed's `option httpchk GET /index.php`, served as a static page.
echo "$name ok" > /var/www/html/index.php
systemctl enable --now nginx
systemctl reload nginx

# Never answer ARP for the VIPs nor use them as ARP source (LVS-DR).
cat > /etc/sysctl.d/90-lb-dr.conf <<CONF
net.ipv4.conf.all.arp_ignore = 1
net.ipv4.conf.all.arp_announce = 2
CONF
sysctl -q -p /etc/sysctl.d/90-lb-dr.conf

# The VIPs on lo, at every boot.
cat > /etc/systemd/system/lb-vips-on-lo.service <<UNIT
[Unit]
Description=lb direct routing: the VIPs on lo
After=network.target
[Service]
Type=oneshot
RemainAfterExit=yes
$(for vip in "$@"; do echo "ExecStart=/sbin/ip addr replace $vip/32 dev lo"; done)
$(for vip in "$@"; do echo "ExecStop=/sbin/ip addr del $vip/32 dev lo"; done)
[Install]
WantedBy=multi-user.target
UNIT
systemctl daemon-reload
systemctl enable lb-vips-on-lo.service
systemctl restart lb-vips-on-lo.service

if [ "$role" = mariadb ]; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q mariadb-server
    printf '[mysqld]\nbind-address = 0.0.0.0\n' > /etc/mysql/mariadb.conf.d/90-lb-lab.cnf
    systemctl restart mariadb
    # lb's mysql check (HAProxy `option mysql-check user haproxy_check`)
    # logs in without a password and quits.
    mariadb -e "CREATE USER IF NOT EXISTS 'haproxy_check'@'${net}.%'"
fi
