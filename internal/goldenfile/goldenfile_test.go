package goldenfile

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// recorder is a testing.TB that keeps what Check reports.
type recorder struct {
	testing.TB
	errs []string
}

func (r *recorder) Helper() {}
func (r *recorder) Errorf(format string, args ...any) {
	r.errs = append(r.errs, fmt.Sprintf(format, args...))
}
func (r *recorder) Fatalf(format string, args ...any) {
	r.errs = append(r.errs, fmt.Sprintf(format, args...))
}

func TestCheck(t *testing.T) {
	path := filepath.Join(t.TempDir(), "out.golden")
	if err := os.WriteFile(path, []byte("line one\nline two\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	r := &recorder{TB: t}
	Check(r, path, []byte("line one\nline two\n"))
	if len(r.errs) != 0 {
		t.Errorf("equal output reported: %q", r.errs)
	}
	Check(r, path, []byte("line one\nline 2\n"))
	if len(r.errs) != 1 || !strings.Contains(r.errs[0], path) || !strings.Contains(r.errs[0], "line 2") {
		t.Errorf("different output: %q; want one report naming the file and the diff", r.errs)
	}
	r.errs = nil
	Check(r, filepath.Join(t.TempDir(), "missing.golden"), []byte("x"))
	if len(r.errs) != 1 || !strings.Contains(r.errs[0], "-update") {
		t.Errorf("missing file: %q; want a report that says how to create it", r.errs)
	}
}
