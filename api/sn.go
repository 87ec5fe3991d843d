package api

import (
	"fmt"
	"strings"
)

// MaxSNLen is the longest serial number a device or a controller accepts.
const MaxSNLen = 64

// ValidateSN checks a serial number's shape, the one rule both ends apply:
// 1 to MaxSNLen printable ASCII characters, no space. Whether the SN exists
// is the controller's to say. The error is an *InputError for --sn.
func ValidateSN(sn string) error {
	if sn == "" {
		return &InputError{Field: "--sn", Msg: "missing; pass the device's serial number from 'vcpe-hub instance create'"}
	}
	if len(sn) > MaxSNLen || strings.ContainsFunc(sn, func(r rune) bool { return r <= ' ' || r > '~' }) {
		return &InputError{Field: "--sn", Msg: fmt.Sprintf("%q is not a serial number (printable ASCII without spaces, at most %d characters)", sn, MaxSNLen)}
	}
	return nil
}
