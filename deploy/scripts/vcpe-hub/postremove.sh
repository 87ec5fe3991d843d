#!/bin/sh
# vcpe-hub: after removal (deb postrm "remove" or "purge"; rpm %postun 0).
# Only a purge deletes the state (store, CA, keys: take a vcpe-hub backup
# first) and the configuration; rpm has no purge, so rpm -e keeps them.
set -e
case "$1" in
purge)
	rm -rf /var/lib/vcpe-hub
	rm -f /etc/vcpe-hub/vcpe-hub.conf
	rmdir /etc/vcpe-hub 2>/dev/null || :
	;;
esac
if [ -d /run/systemd/system ]; then
	systemctl daemon-reload >/dev/null 2>&1 || :
fi
exit 0
