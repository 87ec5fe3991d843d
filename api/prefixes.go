package api

import (
	"net/netip"
	"strings"
)

// JoinPrefixes writes prefixes as text joined by sep ("," in flags and the
// controller's store, ", " in messages); no prefixes is "".
func JoinPrefixes(ps []netip.Prefix, sep string) string {
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = p.String()
	}
	return strings.Join(s, sep)
}
