//go:build !linux

package bench

import (
	"context"
	"errors"
)

// Run is Linux only: it needs network namespaces, veth pairs and TUN.
func Run(ctx context.Context, o Options) (*Report, error) {
	return nil, errors.New("bench: unsupported on this OS: needs Linux network namespaces (run make bench on Linux as root)")
}
