#!/bin/sh
# vcpe-hub: after install or upgrade (deb postinst "configure"
# [OLD-VERSION]; rpm %post 1 on install, 2 on upgrade). The service is
# enabled, but starts only once /etc/vcpe-hub/vcpe-hub.conf exists
# (ConditionPathExists). An upgrade restarts a running hub on the new
# binary; its store, CA and keys stay in /var/lib/vcpe-hub and the store is
# migrated on start.
set -e
if [ -d /run/systemd/system ]; then
	systemctl daemon-reload >/dev/null 2>&1 || :
	upgrade=no
	case "$1" in
	configure) [ -z "$2" ] || upgrade=yes ;;
	2) upgrade=yes ;;
	esac
	if [ "$upgrade" = yes ]; then
		systemctl try-restart vcpe-hub.service >/dev/null 2>&1 || :
	else
		systemctl enable vcpe-hub.service >/dev/null 2>&1 || :
		systemctl start vcpe-hub.service >/dev/null 2>&1 || :
	fi
fi
exit 0
