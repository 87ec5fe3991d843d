package provision

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
)

func TestCheckLockout(t *testing.T) {
	ssh := Protected{netip.MustParseAddr("198.18.0.50"), "the SSH client (SSH_CONNECTION)"}
	ctl := Protected{netip.MustParseAddr("198.18.0.1"), "the controller"}
	tests := []struct {
		name   string
		routes []string
		want   *Protected
	}{
		{"disjoint", []string{"198.19.2.0/24", "198.19.100.0/24"}, nil},
		{"captures the SSH client", []string{"198.19.2.0/24", "198.18.0.0/24"}, &ssh},
		{"captures the controller exactly", []string{"198.18.0.1/32"}, &ctl},
		{"default route", []string{"0.0.0.0/0"}, &ssh},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var routes []netip.Prefix
			for _, r := range tt.routes {
				routes = append(routes, netip.MustParsePrefix(r))
			}
			err := CheckLockout(routes, []Protected{ssh, ctl})
			var le *LockoutError
			switch {
			case tt.want == nil && err != nil:
				t.Errorf("CheckLockout = %v; want nil", err)
			case tt.want != nil && !errors.As(err, &le):
				t.Errorf("CheckLockout = %v; want a LockoutError", err)
			case tt.want != nil && le.Protected != *tt.want:
				t.Errorf("protected = %+v; want %+v", le.Protected, *tt.want)
			case tt.want != nil && !strings.Contains(err.Error(), "--force"):
				t.Errorf("error %q does not say how to override", err)
			}
		})
	}
}

func TestSSHClient(t *testing.T) {
	for in, want := range map[string]string{
		"198.18.0.50 52311 198.18.0.11 22":   "198.18.0.50",
		"::ffff:198.18.0.50 52311 ::1 22":    "198.18.0.50",
		"2001:db8::1 52311 2001:db8::2 22":   "2001:db8::1",
		"":                                   "",
		"198.18.0.50 52311":                  "",
		"not-an-address 1 198.18.0.11 22":    "",
		"fe80::1%eth0 52311 fe80::2%eth0 22": "fe80::1",
	} {
		got, ok := SSHClient(in)
		if (want == "") == ok || (ok && got.String() != want) {
			t.Errorf("SSHClient(%q) = %v, %v; want %q", in, got, ok, want)
		}
	}
}

func FuzzSSHClient(f *testing.F) {
	f.Add("198.18.0.50 52311 198.18.0.11 22")
	f.Add("::1 1 ::1 22")
	f.Fuzz(func(t *testing.T, s string) {
		if a, ok := SSHClient(s); ok && (!a.IsValid() || a.Zone() != "") {
			t.Fatalf("SSHClient(%q) returned %v", s, a)
		}
	})
}

func TestLANCommands(t *testing.T) {
	got := LANCommands([]netip.Prefix{netip.MustParsePrefix("198.19.2.7/24")}, netip.MustParseAddr("198.19.1.1"))
	if len(got) != 1 || got[0] != "ip route replace 198.19.2.0/24 via 198.19.1.1" {
		t.Errorf("LANCommands = %q", got)
	}
}
