package logfile

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

func TestRotatesBySizeAndKeepsBackups(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "d.log")
	w, err := Open(path, 100, 2)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 10; i++ {
		fmt.Fprintf(w, "line %02d %s\n", i, strings.Repeat("x", 31)) // 40 bytes
	}
	w.Close()
	// 40-byte lines, 100-byte files: two lines per file, newest in d.log.
	want := map[string]string{"d.log": "line 08", "d.log.1": "line 06", "d.log.2": "line 04"}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 3 {
		t.Fatalf("files %v; want d.log, d.log.1, d.log.2", entries)
	}
	for name, first := range want {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		fi, _ := os.Stat(filepath.Join(dir, name))
		if !bytes.HasPrefix(b, []byte(first)) || len(b) != 80 || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: %q mode %v; want two lines from %q, 0600", name, b, fi.Mode().Perm(), first)
		}
	}
	if got := Names(path, 2); len(got) != 3 || got[2] != path+".2" {
		t.Errorf("Names = %v", got)
	}
	if _, err := w.Write([]byte("late")); err == nil {
		t.Error("write after Close succeeded")
	}
}

func TestAppendsToAnExistingFileAndCountsIt(t *testing.T) {
	path := filepath.Join(t.TempDir(), "d.log")
	os.WriteFile(path, bytes.Repeat([]byte("o"), 90), 0o600)
	w, err := Open(path, 100, 1)
	if err != nil {
		t.Fatal(err)
	}
	w.Write(bytes.Repeat([]byte("n"), 20))
	w.Close()
	old, _ := os.ReadFile(path + ".1")
	cur, _ := os.ReadFile(path)
	if len(old) != 90 || string(cur) != strings.Repeat("n", 20) {
		t.Errorf("after reopen: .1 has %d bytes, current %q; want the old 90 rotated out", len(old), cur)
	}
}

func TestNoBackupsTruncates(t *testing.T) {
	dir := t.TempDir()
	w, _ := Open(filepath.Join(dir, "d.log"), 10, 0)
	w.Write([]byte("12345678"))
	w.Write([]byte("abcdef"))
	w.Close()
	b, _ := os.ReadFile(filepath.Join(dir, "d.log"))
	entries, _ := os.ReadDir(dir)
	if string(b) != "abcdef" || len(entries) != 1 {
		t.Errorf("content %q, %d files; want only the newest write", b, len(entries))
	}
}

func TestConcurrentWritesLoseNothing(t *testing.T) {
	dir := t.TempDir()
	w, _ := Open(filepath.Join(dir, "d.log"), 1000, 100)
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 100; i++ {
				w.Write([]byte("0123456789\n"))
			}
		}()
	}
	wg.Wait()
	w.Close()
	var total int
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		b, _ := os.ReadFile(filepath.Join(dir, e.Name()))
		total += bytes.Count(b, []byte("0123456789\n"))
	}
	if total != 800 {
		t.Errorf("%d lines across %d files; want 800", total, len(entries))
	}
}
