#!/bin/sh
# vcpe-hub: before removal (deb prerm "remove"; rpm %preun 0). Stops the
# hub and keeps its state (/var/lib/vcpe-hub: store, CA, keys) and its
# configuration. An upgrade (deb "upgrade", rpm 1) leaves it running.
set -e
case "$1" in
remove | 0)
	if [ -d /run/systemd/system ]; then
		systemctl disable --now vcpe-hub.service >/dev/null 2>&1 || :
	fi
	;;
esac
exit 0
