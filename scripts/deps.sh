#!/usr/bin/env bash
# Install what building and testing lifecycle needs (Debian 12), once.
set -euo pipefail
pkgs=(build-essential postgresql-15 postgresql-server-dev-15 postgresql-15-cron
      libcurl4-openssl-dev libipc-run-perl python3 python3-aiosmtpd python3-psycopg2 graphviz gnuplot-nox
      prometheus-postgres-exporter prometheus curl rsync)
missing=()
for p in "${pkgs[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
	SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO=sudo
	echo "installing: ${missing[*]}"
	$SUDO apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# The Debian packages start a cluster and an exporter we do not use.
if [ "$(id -u)" -eq 0 ]; then
	systemctl disable --now prometheus-postgres-exporter >/dev/null 2>&1 || true
	systemctl disable --now prometheus >/dev/null 2>&1 || true
fi
