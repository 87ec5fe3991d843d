package precheck

import (
	"bytes"
	"context"
	"path/filepath"
	"testing"

	"github.com/openvcpe/vcpe/internal/goldenfile"
)

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	goldenfile.Check(t, filepath.Join("..", "testdata", "golden", "precheck", name), got)
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
