package dataplane_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/openvcpe/vcpe/api"
	"github.com/openvcpe/vcpe/dataplane"
	"github.com/openvcpe/vcpe/internal/namespace"
)

// helperEnv selects a helper main in the test binary: the test re-executes
// itself inside a namespace (ip netns exec) to run a real hub process or a
// small network tool.
const helperEnv = "VCPE_TEST_HELPER"

func TestMain(m *testing.M) {
	switch os.Getenv(helperEnv) {
	case "":
		namespace.Main(m)
	case "hub":
		os.Exit(hubMain(os.Args[1:]))
	case "claimhub":
		os.Exit(claimHubMain(os.Args[1:]))
	case "udpecho":
		os.Exit(udpEchoMain(os.Args[1:]))
	case "udpsend":
		os.Exit(udpSendMain(os.Args[1:]))
	case "httpget":
		os.Exit(httpGetMain(os.Args[1:]))
	case "tcplisten":
		os.Exit(tcpListenMain(os.Args[1:]))
	case "tcphold":
		os.Exit(tcpHoldMain(os.Args[1:]))
	default:
		fmt.Fprintln(os.Stderr, "unknown helper", os.Getenv(helperEnv))
		os.Exit(2)
	}
}

// hubKeyConfig is the file the hub helper reads.
type hubFile struct {
	PrivateKey api.Key       `json:"private_key"`
	UAPIDir    string        `json:"uapi_dir"`
	Control    string        `json:"control"`
	Config     api.HubConfig `json:"config"`
}

// readHubFile reads the config file of the hub helper processes.
func readHubFile(path string) (hubFile, error) {
	var f hubFile
	b, err := os.ReadFile(path)
	if err != nil {
		return f, err
	}
	return f, json.Unmarshal(b, &f)
}

// withHubFile starts the hub dataplane from the config file at path (its
// claims on claimPort, 0 for the default) with its control socket, runs
// serve, then closes both: the common part of the hub helper processes.
func withHubFile(path string, claimPort uint16, serve func(h *dataplane.Hub, f hubFile, log *slog.Logger) int) int {
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	f, err := readHubFile(path)
	if err != nil {
		log.Error("read hub file", "err", err)
		return 1
	}
	h, err := dataplane.NewHub(dataplane.HubOptions{PrivateKey: f.PrivateKey, UAPIDir: f.UAPIDir, Logger: log, ClaimPort: claimPort})
	if err != nil {
		log.Error("new hub", "err", err)
		return 1
	}
	if err := h.Start(f.Config); err != nil {
		log.Error("start hub", "err", err)
		return 1
	}
	defer h.Close()
	ctl, err := dataplane.ListenControl(f.Control, h.Status, log)
	if err != nil {
		log.Error("control", "err", err)
		return 1
	}
	defer ctl.Close()
	return serve(h, f, log)
}

// hubMain runs the hub dataplane the way vcpe-hub serve would: from a
// config file, reloading it on SIGHUP, closing on SIGTERM.
func hubMain(args []string) int {
	return withHubFile(args[0], 0, func(h *dataplane.Hub, _ hubFile, log *slog.Logger) int {
		sig := make(chan os.Signal, 1)
		signal.Notify(sig, syscall.SIGHUP, syscall.SIGTERM, syscall.SIGINT)
		for s := range sig {
			if s != syscall.SIGHUP {
				return 0
			}
			f, err := readHubFile(args[0])
			if err == nil {
				err = h.Apply(f.Config)
			}
			if err != nil {
				log.Error("reload", "err", err)
			} else {
				log.Info("reloaded", "generation", f.Config.Generation)
			}
		}
		return 0
	})
}

func udpEchoMain(args []string) int {
	pc, err := net.ListenPacket("udp4", args[0])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	buf := make([]byte, 2048)
	for {
		n, from, err := pc.ReadFrom(buf)
		if err != nil {
			return 1
		}
		_, _ = pc.WriteTo(buf[:n], from)
	}
}

// udpSendMain sends a datagram to args[0] and waits for the echo; it tries
// three times, one second each.
func udpSendMain(args []string) int {
	c, err := net.Dial("udp4", args[0])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer c.Close()
	buf := make([]byte, 2048)
	for i := range 3 {
		msg := fmt.Sprintf("vcpe-udp-%d", i)
		_, _ = c.Write([]byte(msg))
		_ = c.SetReadDeadline(time.Now().Add(time.Second))
		n, err := c.Read(buf)
		if err == nil && string(buf[:n]) == msg {
			return 0
		}
	}
	fmt.Fprintln(os.Stderr, "no echo from", args[0])
	return 1
}

func httpGetMain(args []string) int {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, args[0], nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer resp.Body.Close()
	_, _ = io.Copy(os.Stdout, resp.Body)
	return 0
}

// notifySock is a stand-in for systemd's notification socket. Like
// systemd it reads all the time: a full socket would block the daemon.
type notifySock struct {
	path string
	mu   sync.Mutex
	got  []string
}

func listenNotify(t *testing.T) *notifySock {
	t.Helper()
	path := filepath.Join(t.TempDir(), "notify.sock")
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	n := &notifySock{path: path}
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 4096)
		for {
			k, err := c.Read(buf)
			if err != nil {
				return
			}
			n.mu.Lock()
			n.got = append(n.got, strings.Split(string(buf[:k]), "\n")...)
			n.mu.Unlock()
		}
	}()
	t.Cleanup(func() { c.Close(); <-done })
	return n
}

// wait waits up to 10 s for a notification that starts with want.
func (n *notifySock) wait(t *testing.T, want string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		n.mu.Lock()
		got := slices.Clone(n.got)
		n.mu.Unlock()
		for _, g := range got {
			if strings.HasPrefix(g, want) {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Errorf("no %q from vcped on NOTIFY_SOCKET; got %q", want, got)
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// ownRouteDsts lists the destinations of the routes in the calling thread's
// namespace that carry vcpe's protocol number, sorted.
func ownRouteDsts(t *testing.T) []string {
	t.Helper()
	// Every table: the hub's routes live in their own.
	rs, err := netlink.RouteListFiltered(netlink.FAMILY_V4, &netlink.Route{Protocol: dataplane.RouteProtocol, Table: unix.RT_TABLE_UNSPEC}, netlink.RT_FILTER_PROTOCOL|netlink.RT_FILTER_TABLE)
	if err != nil {
		t.Fatal(err)
	}
	var s []string
	for _, r := range rs {
		s = append(s, r.Dst.String())
	}
	slices.Sort(s)
	return s
}

// tcpListenMain accepts TCP connections on args[0] and holds them open
// until killed (an SSH server stand-in).
func tcpListenMain(args []string) int {
	ln, err := net.Listen("tcp4", args[0])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	var held []net.Conn
	for {
		c, err := ln.Accept()
		if err != nil {
			return 1
		}
		held = append(held, c)
	}
}

// tcpHoldMain connects to args[0] and holds the connection open until
// killed (an SSH client stand-in).
func tcpHoldMain(args []string) int {
	c, err := net.DialTimeout("tcp4", args[0], 5*time.Second)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer c.Close()
	// Block reading the connection (until the peer closes it or this
	// process is killed): a bare select{} would be reported by the runtime
	// as a deadlock and end the process, dropping the connection.
	_, _ = io.Copy(io.Discard, c)
	return 0
}
