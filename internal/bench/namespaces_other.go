//go:build !linux

package bench

import "errors"

// Namespaces is Linux only.
type Namespaces struct{}

// New is unsupported off Linux.
func (n *Namespaces) New() (string, error) {
	return "", errors.New("bench: network namespaces are unsupported on this OS")
}

// Close does nothing off Linux.
func (n *Namespaces) Close() error { return nil }
