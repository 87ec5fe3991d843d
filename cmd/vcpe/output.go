package main

import (
	"os"

	"github.com/openvcpe/vcpe/internal/device"
)

// defaultStateDir is --state-dir's default: $VCPE_STATE_DIR, else
// /var/lib/vcpe (the lab sets the variable on each device).
func defaultStateDir() string {
	if d := os.Getenv("VCPE_STATE_DIR"); d != "" {
		return d
	}
	return device.DefaultStateDir
}
