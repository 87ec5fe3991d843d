package precheck

import (
	"bytes"
	"context"
	"flag"
	"os"
	"path/filepath"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files")

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	p := filepath.Join("..", "testdata", "golden", "precheck", name)
	if *update {
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(p)
	if err != nil {
		t.Fatalf("%v (run: go test ./precheck -run Golden -update)", err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s differs (run with -update after checking the change):\n--- got\n%s\n--- want\n%s", name, got, want)
	}
}

// TestGoldenReport fixes the human and the JSON output for one snapshot with
// every status in it.
func TestGoldenReport(t *testing.T) {
	rep := Run(context.Background(), loadFixture(t, "debian12-vm"), Options{})
	var txt, col, js bytes.Buffer
	if err := rep.WriteText(&txt, false); err != nil {
		t.Fatal(err)
	}
	if err := rep.WriteText(&col, true); err != nil {
		t.Fatal(err)
	}
	if err := rep.WriteJSON(&js); err != nil {
		t.Fatal(err)
	}
	golden(t, "debian12-vm.txt", txt.Bytes())
	golden(t, "debian12-vm.json", js.Bytes())
	if bytes.Contains(txt.Bytes(), []byte("\x1b[")) {
		t.Error("plain text output has escape codes")
	}
	if !bytes.Contains(col.Bytes(), []byte("\x1b[31mFAIL ✗\x1b[0m")) {
		t.Error("coloured output lacks the red FAIL mark")
	}
}
