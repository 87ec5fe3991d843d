package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/openvcpe/vcpe/diag"
)

func TestDiagBundleCaptureUsageErrors(t *testing.T) {
	t.Setenv("VCPE_CONTROLLER", "")
	t.Setenv("VCPE_CONTROLLER_FINGERPRINT", "")
	empty := t.TempDir()
	for _, args := range [][]string{
		{"diag", "bundle"},
		{"diag", "bundle", "out.zip"},
		{"diag", "bundle", "/no/such/dir/out.tar.gz"},
		{"diag", "capture", "--seconds", "0"},
		{"diag", "capture", "--seconds", "601", "--wan-if", "lo"},
		{"diag", "capture", "--state-dir", empty},
		{"probe", "reach", "--state-dir", empty},
		{"probe", "reach", "--state-dir", empty, "--controller", "https://198.18.0.1:8443"},
		{"probe", "reach", "--controller", "http://198.18.0.1:8443", "--controller-fingerprint", "sha256:" + strings.Repeat("ab", 32)},
		{"probe", "reach", "--controller", "https://198.18.0.1:8443", "--controller-fingerprint", "sha256:xyz"},
		{"precheck", "--controller-fingerprint", "sha256:" + strings.Repeat("ab", 32)},
		{"precheck", "--controller", "https://198.18.0.1:8443", "--controller-fingerprint", "nope"},
		{"precheck", "--controller", "http://198.18.0.1:8443", "--controller-fingerprint", "sha256:" + strings.Repeat("ab", 32)},
	} {
		if code := run(args); code != 2 {
			t.Errorf("vcpe %s: exit %d; want 2", strings.Join(args, " "), code)
		}
	}
}

func TestWriteCaptureAndReach(t *testing.T) {
	at := time.Date(2026, 11, 26, 3, 0, 0, 0, time.UTC)
	r := diag.SummarizeCapture("wan0", 4500, at, 10*time.Second, []diag.WGPacket{
		{Time: at, Outgoing: true, WGHeader: diag.WGHeader{Type: diag.WGInitiation, Length: 148}},
	}, 0)
	var b bytes.Buffer
	writeCapture(&b, r)
	for _, want := range []string{"out", "handshake initiation", "sent    1", "initiations leave: yes; responses come back: no", "no response came back"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("capture text lacks %q:\n%s", want, b.String())
		}
	}
	b.Reset()
	writeReach(&b, diag.ReachReport{Summary: "every probed port arrives", Ports: []diag.PortReach{{Status: diag.ReachNotArrived, Detail: "never arrived", Fix: "allow inbound UDP 4500"}}})
	if !strings.Contains(b.String(), "fix: allow inbound UDP 4500") {
		t.Errorf("reach text lacks the fix:\n%s", b.String())
	}
}
