package lab

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"

	"github.com/openvcpe/vcpe/internal/namespace"
)

// DefaultPrefix names the namespaces of the lab that vcpe-lab builds
// unless told otherwise.
const DefaultPrefix = "vcpelab"

// ErrAlreadyUp means namespaces of this lab exist already.
var ErrAlreadyUp = errors.New("lab is already up")

// Lab is one sandbox on this machine.
type Lab struct {
	Prefix string   // namespace names are Prefix-Node
	Topo   Topology // what to build
	// RunDir holds the lab's state: the services' state dirs, logs and pid
	// files. Down removes it.
	RunDir string
	Log    *slog.Logger
	// Controllers > 0 runs the replicated control plane: that many
	// controller processes on PostgreSQL and a separate hub process
	// (StartReplicated). 0 is one vcpe-hub serve on SQLite.
	Controllers int
	// Hubs > 1 runs a hub group (UseHubs): the controller alone and one
	// vcpe-hub serve --role hub per hub node (StartHubGroup).
	Hubs int
	// HubFailback starts the group's controller with --hub-failback.
	HubFailback bool
}

// controllerURL is what devices are given: every replica's URL,
// comma-separated, in the replicated control plane.
func (l *Lab) controllerURL() string {
	if l.Controllers > 0 {
		return strings.Join(ControllerURLs(l.Controllers), ",")
	}
	return ControllerURL()
}

// New returns a lab with the default topology.
func New(prefix, runDir string, log *slog.Logger) *Lab {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Lab{Prefix: prefix, Topo: Default(), RunDir: runDir, Log: log}
}

// NS is the namespace name of a node.
func (l *Lab) NS(node string) string { return l.Prefix + "-" + node }

// Node returns the node with that name.
func (l *Lab) Node(name string) (Node, bool) {
	for _, n := range l.Topo.Nodes {
		if n.Name == name {
			return n, true
		}
	}
	return Node{}, false
}

// Command runs argv inside a node's namespace (ip netns exec, which also
// gives it the namespace's own /sys).
func (l *Lab) Command(ctx context.Context, node string, argv ...string) *exec.Cmd {
	return namespace.Command(ctx, l.NS(node), argv...)
}

// Run runs argv in a node and returns its combined output; the error says
// which node and command failed.
func (l *Lab) Run(ctx context.Context, node string, argv ...string) (string, error) {
	out, err := l.Command(ctx, node, argv...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%s: %s: %w: %s", node, strings.Join(argv, " "), err, strings.TrimSpace(string(out)))
	}
	return string(out), nil
}

// Namespaces lists the lab's namespaces that exist now.
func (l *Lab) Namespaces() ([]string, error) {
	entries, err := os.ReadDir("/run/netns")
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list namespaces: %w", err)
	}
	var out []string
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), l.Prefix+"-") {
			out = append(out, e.Name())
		}
	}
	sort.Strings(out)
	return out, nil
}

// Path is a path inside the lab's run dir.
func (l *Lab) Path(elem ...string) string {
	return filepath.Join(append([]string{l.RunDir}, elem...)...)
}
