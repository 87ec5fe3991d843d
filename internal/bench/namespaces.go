package bench

import (
	"sync"

	"github.com/openvcpe/vcpe/internal/namespace"
)

// Namespaces creates network namespaces for a bench run outside of tests
// (named like internal/namespace's test namespaces, so make clean-netns
// also removes what a killed bench left behind) and removes them all, with
// whatever still runs inside, on Close.
type Namespaces struct {
	mu    sync.Mutex
	names []string
}

// New creates a namespace named namespace.Prefix+"b"+random hex, with its
// loopback up.
func (n *Namespaces) New() (string, error) {
	name, err := namespace.NewName("b")
	if err != nil {
		return "", err
	}
	if err := namespace.Create(name); err != nil {
		return "", err
	}
	n.mu.Lock()
	n.names = append(n.names, name)
	n.mu.Unlock()
	return name, nil
}

// Close kills the processes left in every namespace it created and
// deletes them. It is safe to call more than once.
func (n *Namespaces) Close() error {
	n.mu.Lock()
	names := n.names
	n.names = nil
	n.mu.Unlock()
	return namespace.Delete(0, names...)
}
