package main

import (
	"encoding/json"
	"io"
	"os"

	"github.com/openvcpe/vcpe/provision"
)

// writeJSON writes v as the command's indented --json document.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// defaultStateDir is --state-dir's default: $VCPE_STATE_DIR, else
// /var/lib/vcpe (the lab sets the variable on each device).
func defaultStateDir() string {
	if d := os.Getenv("VCPE_STATE_DIR"); d != "" {
		return d
	}
	return provision.DefaultStateDir
}
