#!/bin/sh
# vcpe: after removal (deb postrm "remove" or "purge"; rpm %postun 0).
# Only a purge deletes the state directory and the unit vcpe install
# wrote; rpm has no purge, so rpm -e keeps the state.
set -e
case "$1" in
purge)
	rm -rf /var/lib/vcpe
	unit=/etc/systemd/system/vcped.service
	if grep -qs '^# Installed by vcpe install' "$unit"; then
		rm -f "$unit" /etc/systemd/system/multi-user.target.wants/vcped.service
	fi
	;;
esac
if [ -d /run/systemd/system ]; then
	systemctl daemon-reload >/dev/null 2>&1 || :
fi
exit 0
