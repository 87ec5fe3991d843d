//go:build !linux

package precheck

import (
	"context"
	"errors"
)

// ErrUnsupported is returned by Gather on systems other than Linux.
var ErrUnsupported = errors.New("gathering a live host snapshot is only supported on Linux (use --root DIR with a snapshot saved on the Linux host)")

// Gather is Linux-only.
func Gather(context.Context, GatherOptions) (*Snapshot, error) { return nil, ErrUnsupported }
