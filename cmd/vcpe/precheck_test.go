package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/openvcpe/vcpe/cmd/internal/cli"
)

// runCaptured runs vcpe like run does, capturing stdout and stderr.
func runCaptured(args ...string) (code int, stdout, stderr string) {
	var started bool
	root := newRootCmd(&started)
	var out, errb bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&errb)
	root.SetArgs(args)
	err := root.Execute()
	if err != nil && !started {
		err = &cli.UsageError{Err: fmt.Errorf("%w (see 'vcpe --help')", err)}
	}
	code = cli.Report(&errb, "vcpe", err)
	return code, out.String(), errb.String()
}

func snap(name string) string { return filepath.Join("..", "..", "testdata", "snapshots", name) }

func TestPrecheckExitCodes(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "no-such-dir")
	tests := []struct {
		args   []string
		code   int
		stdout []string
		stderr []string
	}{
		{[]string{"precheck", "--root", snap("centos79-clean")}, 0, []string{"PASS ✓  os.release", "16 checks: 15 pass, 0 warn, 0 fail, 1 skip; ready"}, nil},
		{[]string{"precheck", "--root", snap("debian12-vm")}, 1, []string{"FAIL ✗  ports.udp", "fix: stop charon (pid 912)", "NOT READY"}, nil},
		{[]string{"precheck", "--root", snap("ubuntu1804-docker")}, 1, []string{"WARN !  host.services"}, nil},
		{[]string{"precheck", "--root", missing}, 2, nil, []string{"--root " + missing + ": no such directory"}},
		{[]string{"precheck", "--root", snap("centos79-clean"), "--wan-if", "nope0"}, 2, nil, []string{"--wan-if nope0: no such interface (have: eth0, lo)"}},
		{[]string{"precheck", "--controller", "ftp://198.18.0.1"}, 2, nil, []string{"--controller"}},
		{[]string{"precheck", "--bogus"}, 2, nil, []string{"unknown flag"}},
		{[]string{"precheck", "extra"}, 2, nil, nil},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			code, out, errOut := runCaptured(tt.args...)
			if code != tt.code {
				t.Fatalf("exit %d; want %d\nstdout:\n%s\nstderr:\n%s", code, tt.code, out, errOut)
			}
			for _, s := range tt.stdout {
				if !strings.Contains(out, s) {
					t.Errorf("stdout lacks %q:\n%s", s, out)
				}
			}
			for _, s := range tt.stderr {
				if !strings.Contains(errOut, s) {
					t.Errorf("stderr lacks %q:\n%s", s, errOut)
				}
			}
			if strings.Contains(out, "\x1b[") {
				t.Error("colour on a non-terminal")
			}
		})
	}
}

func TestPrecheckJSON(t *testing.T) {
	code, out, _ := runCaptured("precheck", "--json", "--root", snap("alinux3-vcped"))
	if code != 1 {
		t.Fatalf("exit %d; want 1", code)
	}
	var doc struct {
		OK     bool `json:"ok"`
		Checks []struct {
			ID, Status, Title, Detail, Fix string
			Findings                       []map[string]any
		} `json:"checks"`
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatalf("stdout is not the JSON document: %v\n%s", err, out)
	}
	if doc.OK || len(doc.Checks) != 16 {
		t.Fatalf("ok=%v, %d checks", doc.OK, len(doc.Checks))
	}
	for _, c := range doc.Checks {
		if c.ID == "" || c.Title == "" || c.Status == "" {
			t.Errorf("incomplete check %+v", c)
		}
	}
}

func TestPrecheckSaveThenRoot(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "snap")
	code, first, errOut := runCaptured("precheck", "--json", "--root", snap("rocky9-firewalled"), "--save", dir)
	if code != 1 || !strings.Contains(errOut, "snapshot saved to "+dir) {
		t.Fatalf("exit %d, stderr %q", code, errOut)
	}
	code, second, _ := runCaptured("precheck", "--json", "--root", dir)
	if code != 1 || first != second {
		t.Fatalf("re-judging the saved copy differs (exit %d):\n%s\n---\n%s", code, first, second)
	}
	if _, err := os.Stat(filepath.Join(dir, "cmd", "nft-ruleset.json")); err != nil {
		t.Fatal(err)
	}
}
