//go:build !linux

package suite

import "errors"

// readHost is Linux only: routes and links are read over netlink.
func readHost(HostQuery) (*Host, error) {
	return nil, errors.New("reading routes and links is unsupported on this OS (vcpe runs on Linux)")
}
