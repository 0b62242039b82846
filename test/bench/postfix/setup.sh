#!/usr/bin/env bash
# Installs what the bench's Postfix comparison (`npm run bench -- --server postfix|both`) runs:
# Debian's Postfix, OpenDKIM (and opendkim-genkey) and Dovecot (its SASL auth service). Run
# once by hand as root; running it again changes nothing. The bench starts private instances of
# these daemons itself, so the system's own services are kept from starting and then disabled.
set -euo pipefail

if [ "$(id -u)" -ne 0 ]; then
  echo "setup.sh: run as root" >&2
  exit 1
fi

export DEBIAN_FRONTEND=noninteractive
PACKAGES=(postfix opendkim opendkim-tools dovecot-core)
SERVICES=(postfix opendkim dovecot)

# "No configuration": the package leaves /etc/postfix/main.cf unwritten and asks nothing.
echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections

missing=()
for package in "${PACKAGES[@]}"; do
  [ "$(dpkg-query -W -f='${db:Status-Status}' "$package" 2>/dev/null)" = installed ] || missing+=("$package")
done
if [ "${#missing[@]}" -eq 0 ]; then
  echo "setup.sh: ${PACKAGES[*]} already installed"
else
  # Without systemd, the maintainer scripts start services through invoke-rc.d, which asks
  # policy-rc.d: exit code 101 forbids it. Only ours is removed afterwards.
  policy=/usr/sbin/policy-rc.d
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy"
    chmod 755 "$policy"
    trap 'rm -f "$policy"' EXIT
  fi
  apt-get update
  apt-get install -y --no-install-recommends "${missing[@]}"
fi

# Stop whatever did start (e.g. under systemd) and keep it from starting at boot.
for service in "${SERVICES[@]}"; do
  if [ -d /run/systemd/system ]; then
    systemctl disable --now "$service" >/dev/null 2>&1 || true
  else
    service "$service" stop >/dev/null 2>&1 || true
    update-rc.d "$service" disable >/dev/null 2>&1 || true
  fi
done

postconf -d mail_version
opendkim -V | head -1
dovecot --version
