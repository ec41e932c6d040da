#!/bin/sh
# An lb node: the static server (nginx on 127.0.0.1:4331, as the seed's
# HAProxy host had), the seed's chk_nginx as a VRRP track script, the lb
# package from the host's target/debian/, this node's lb.yaml, then the
# checks an operator runs before starting it, and the start.
# Usage: lb.sh NODE ADDRESS MASTER|BACKUP PRIORITY native|generic
set -eu
node=$1 addr=$2 state=$3 priority=$4 xdp_mode=$5
net=${addr%.*}

deb=$(ls /lb-deb/lb_*.deb 2>/dev/null | sort -V | tail -n 1 || true)
if [ -z "$deb" ]; then
    echo "no lb package in target/debian/ on the host: run \`cargo xtask package\` there, then \`vagrant provision $node\`" >&2
    exit 1
fi

apt-get update -q
DEBIAN_FRONTEND=noninteractive apt-get install -y -q nginx bpftool tcpdump
mkdir -p /srv/static/static
echo "static from $node" > /srv/static/static/index.html
cat > /etc/nginx/sites-available/lb-static <<'CONF'
server {
    listen 127.0.0.1:4331;
    root /srv/static;
}
CONF
ln -sf ../sites-available/lb-static /etc/nginx/sites-enabled/lb-static
# The default site would hold *:80, which lb's frontend `main` binds.
rm -f /etc/nginx/sites-enabled/default
systemctl enable nginx
systemctl restart nginx

cat > /usr/local/bin/check_nginx.sh <<'CHECK'
#!/bin/sh
# The seed's check_nginx.sh: fails while no nginx master runs. lb lowers
# this node's priority by the script's weight instead of stopping itself.
pgrep -f "nginx: master process" >/dev/null
CHECK
chmod 755 /usr/local/bin/check_nginx.sh

DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$deb"
iface=$(ip -o -4 addr show to "$net.0/24" | awk '{print $2; exit}')
/lab/provision/lb-yaml.sh "$node" "$iface" "$addr" "$state" "$priority" "$xdp_mode" "$net" \
    > /etc/lb/lb.yaml
lb-ctl config check /etc/lb/lb.yaml
# Problems are printed with their fixes; the lab starts anyway so they show
# in `journalctl -u lb` too.
lb-ctl doctor || true
systemctl enable --now lb
lb-ctl status
