#!/bin/sh
# vcpe: before removal (deb prerm "remove"; rpm %preun 0). Stops vcped and
# keeps its state (/var/lib/vcpe: identity, configuration, the install
# journal): reinstalling the package and running vcpe install brings the
# device back. Run vcpe uninstall --yes first to undo the installation.
# An upgrade (deb "upgrade", rpm 1) leaves vcped running.
set -e
case "$1" in
remove | 0)
	if [ -d /run/systemd/system ]; then
		systemctl disable --now vcped.service >/dev/null 2>&1 || :
	fi
	# A detached vcped (no systemd): stop it by its pid file.
	pidfile=/var/lib/vcpe/vcped.pid
	if [ -f "$pidfile" ]; then
		pid=$(cat "$pidfile")
		exe=$(readlink "/proc/$pid/exe" 2>/dev/null || :)
		case "$exe" in
		/usr/bin/vcped | "/usr/bin/vcped (deleted)") kill "$pid" 2>/dev/null || : ;;
		esac
	fi
	;;
esac
exit 0
