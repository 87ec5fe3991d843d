package api

import "fmt"

// MaxSNLen is the longest serial number the API accepts.
const MaxSNLen = 64

// ValidateSN checks a serial number as it arrives from the network, before
// it is stored, logged or looked up: 1 to MaxSNLen characters of A–Z, a–z,
// 0–9, '-', '_' and '.'. Issued SNs ("VC" and 14 base32 characters) always
// pass. The error names the field and never echoes the value.
func ValidateSN(sn string) *Error {
	bad := func(msg string) *Error {
		return &Error{Code: CodeInvalidInput, Field: "sn", Message: msg, Fix: "pass the SN issued by vcpe-hub instance create"}
	}
	if sn == "" {
		return bad("the SN is empty")
	}
	if len(sn) > MaxSNLen {
		return bad(fmt.Sprintf("the SN is longer than %d characters", MaxSNLen))
	}
	for i := 0; i < len(sn); i++ {
		c := sn[i]
		if !('A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.') {
			return bad(fmt.Sprintf("the SN holds a character outside A-Z, a-z, 0-9, '-', '_', '.' (byte %d)", i))
		}
	}
	return nil
}
