package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"

	"github.com/openvcpe/vcpe/controller"
)

// listenAndServe is controller.Server.ListenAndServe that tells systemd
// (Type=notify) the hub is ready once both listeners are open, and feeds
// its watchdog (WatchdogSec) while the controller answers: a wedged
// controller stops the pings and gets restarted. Outside systemd the
// notifications are no-ops.
func listenAndServe(ctx context.Context, srv *controller.Server, addr, state string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w (choose another --listen address)", addr, err)
	}
	admin, err := controller.ListenAdmin(state)
	if err != nil {
		ln.Close()
		return err
	}
	_, _ = daemon.SdNotify(false, daemon.SdNotifyReady)
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if interval, _ := daemon.SdWatchdogEnabled(false); interval > 0 {
		go feedWatchdog(wctx, interval/2, func() { srv.ListCCNs() })
	}
	err = srv.Serve(ctx, ln, admin)
	_, _ = daemon.SdNotify(false, daemon.SdNotifyStopping)
	return err
}

// feedWatchdog pings systemd's watchdog every tick, after alive returns.
func feedWatchdog(ctx context.Context, tick time.Duration, alive func()) {
	t := time.NewTicker(tick)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			alive()
			_, _ = daemon.SdNotify(false, daemon.SdNotifyWatchdog)
		}
	}
}

// newServeLogger is serve's logger on w (stderr). Under systemd (journal:
// JOURNAL_STREAM is set, the journal collects stderr) it leaves the time
// out: the journal stamps each line itself.
func newServeLogger(w io.Writer, journal bool) *slog.Logger {
	opts := &slog.HandlerOptions{}
	if journal {
		opts.ReplaceAttr = func(groups []string, a slog.Attr) slog.Attr {
			if len(groups) == 0 && a.Key == slog.TimeKey {
				return slog.Attr{}
			}
			return a
		}
	}
	return slog.New(slog.NewTextHandler(w, opts))
}
