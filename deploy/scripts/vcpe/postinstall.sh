#!/bin/sh
# vcpe: after install or upgrade (deb postinst "configure" [OLD-VERSION];
# rpm %post 1 on install, 2 on upgrade). Nothing starts here: vcpe install
# starts vcped. An upgrade restarts a vcped that is running, on the new
# binary.
set -e
if [ -d /run/systemd/system ]; then
	systemctl daemon-reload >/dev/null 2>&1 || :
	upgrade=no
	case "$1" in
	configure) [ -z "$2" ] || upgrade=yes ;;
	2) upgrade=yes ;;
	esac
	if [ "$upgrade" = yes ]; then
		systemctl try-restart vcped.service >/dev/null 2>&1 || :
	fi
fi
exit 0
