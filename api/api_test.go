package api

import (
	"encoding/json"
	"errors"
	"net/netip"
	"strings"
	"testing"
)

func TestKeyRoundTrip(t *testing.T) {
	priv, err := GeneratePrivateKey()
	if err != nil {
		t.Fatal(err)
	}
	if priv[0]&7 != 0 || priv[31]&128 != 0 || priv[31]&64 == 0 {
		t.Errorf("private key not clamped: %x", priv)
	}
	pub := priv.PublicKey()
	b, err := json.Marshal(struct{ K Key }{pub})
	if err != nil {
		t.Fatal(err)
	}
	var back struct{ K Key }
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if back.K != pub {
		t.Errorf("round trip: got %v; want %v", back.K, pub)
	}
	if _, err := ParseKey("c2hvcnQ="); err == nil {
		t.Error("ParseKey accepted a short key")
	}
}

// RFC 7748 section 6.1 test vector.
func TestPublicKeyVector(t *testing.T) {
	priv := Key{0x77, 0x07, 0x6d, 0x0a, 0x73, 0x18, 0xa5, 0x7d, 0x3c, 0x16, 0xc1, 0x72, 0x51, 0xb2, 0x66, 0x45, 0xdf, 0x4c, 0x2f, 0x87, 0xeb, 0xc0, 0x99, 0x2a, 0xb1, 0x77, 0xfb, 0xa5, 0x1d, 0xb9, 0x2c, 0x2a}
	want := Key{0x85, 0x20, 0xf0, 0x09, 0x89, 0x30, 0xa7, 0x54, 0x74, 0x8b, 0x7d, 0xdc, 0xb4, 0x3e, 0xf7, 0x5a, 0x0d, 0xbf, 0x3a, 0x0d, 0x26, 0x38, 0x1a, 0xf4, 0xeb, 0xa4, 0xa9, 0x8e, 0xaa, 0x9b, 0x4e, 0x6a}
	if got := priv.PublicKey(); got != want {
		t.Errorf("PublicKey = %x; want %x", got, want)
	}
}

func FuzzParseKey(f *testing.F) {
	f.Add("hSDwCYkwp1R0i33ctD73Wg2/Og0mOBr066Spjqqbtmo=")
	f.Add("")
	f.Fuzz(func(t *testing.T, s string) {
		k, err := ParseKey(s)
		if err == nil && k.String() != s {
			// base64 may accept non-canonical padding bits; the canonical
			// form must still parse to the same key.
			if k2, err := ParseKey(k.String()); err != nil || k2 != k {
				t.Fatalf("canonical form of %q does not round-trip", s)
			}
		}
	})
}

func FuzzValidateSN(f *testing.F) {
	f.Add("VC3KQ7M2ZB9XW4TD")
	f.Add("\x1b]0;x\x07")
	f.Fuzz(func(t *testing.T, sn string) {
		if ValidateSN(sn) != nil {
			return
		}
		if len(sn) == 0 || len(sn) > MaxSNLen {
			t.Fatalf("accepted length %d", len(sn))
		}
		for _, r := range sn {
			if r < 0x21 || r > 0x7e {
				t.Fatalf("accepted %q", sn)
			}
		}
	})
}
func TestJoinPrefixes(t *testing.T) {
	ps := []netip.Prefix{netip.MustParsePrefix("198.19.1.0/24"), netip.MustParsePrefix("198.19.2.0/24")}
	for _, tc := range []struct {
		ps   []netip.Prefix
		sep  string
		want string
	}{
		{nil, ",", ""},
		{ps[:1], ",", "198.19.1.0/24"},
		{ps, ",", "198.19.1.0/24,198.19.2.0/24"},
		{ps, ", ", "198.19.1.0/24, 198.19.2.0/24"},
	} {
		if got := JoinPrefixes(tc.ps, tc.sep); got != tc.want {
			t.Errorf("JoinPrefixes(%v, %q) = %q; want %q", tc.ps, tc.sep, got, tc.want)
		}
	}
}

func TestValidateSN(t *testing.T) {
	for _, good := range []string{"VCPE-0001", "VC3KQ7M2ZB9XW4TD", strings.Repeat("x", MaxSNLen)} {
		if err := ValidateSN(good); err != nil {
			t.Errorf("ValidateSN(%q): %v", good, err)
		}
	}
	for _, bad := range []string{"", "has space", strings.Repeat("x", MaxSNLen+1), "tab\there", "é"} {
		var ie *InputError
		if err := ValidateSN(bad); !errors.As(err, &ie) || ie.Field != "--sn" {
			t.Errorf("ValidateSN(%q) = %v; want an --sn input error", bad, err)
		}
	}
}
