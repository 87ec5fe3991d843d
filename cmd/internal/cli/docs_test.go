package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

func docsTree() *cobra.Command {
	root := &cobra.Command{Use: "tool", Short: "A tool", Version: "1.2.3", RunE: func(*cobra.Command, []string) error { return nil }}
	serve := &cobra.Command{Use: "serve", Short: "Serve", RunE: func(*cobra.Command, []string) error { return nil }}
	serve.Flags().String("listen-addr", ":1", "where to listen")
	root.AddCommand(serve, &cobra.Command{Use: "secret", Hidden: true, Run: func(*cobra.Command, []string) {}})
	root.AddCommand(DocsCommand(root))
	return root
}

func TestGenDocsWritesPagesAndCompletions(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("SOURCE_DATE_EPOCH", "1700000000")
	root := docsTree()
	root.SetArgs([]string{"gen-docs", "--man", filepath.Join(dir, "man"), "--completions", filepath.Join(dir, "comp")})
	if err := root.Execute(); err != nil {
		t.Fatal(err)
	}
	if err := CheckMan(root, filepath.Join(dir, "man")); err != nil {
		t.Error(err)
	}
	for _, hidden := range []string{"tool-secret.8.gz", "tool-gen-docs.8.gz"} {
		if _, err := os.Stat(filepath.Join(dir, "man", hidden)); err == nil {
			t.Errorf("%s written for a hidden command", hidden)
		}
	}
	page, err := readGzip(filepath.Join(dir, "man", "tool-serve.8.gz"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(page, "Nov 2023") || !strings.Contains(page, "tool 1.2.3") {
		t.Errorf("tool-serve.8 header lacks the SOURCE_DATE_EPOCH date or the version:\n%s", page)
	}
	for _, f := range []string{"tool.bash", "_tool", "tool.fish"} {
		b, err := os.ReadFile(filepath.Join(dir, "comp", f))
		if err != nil || !strings.Contains(string(b), "tool") {
			t.Errorf("completion %s: %v (%d bytes)", f, err, len(b))
		}
	}
}

func TestCheckManFindsMissingPageAndFlag(t *testing.T) {
	dir := t.TempDir()
	root := docsTree()
	if err := GenMan(root, dir); err != nil {
		t.Fatal(err)
	}
	serve, _, err := root.Find([]string{"serve"})
	if err != nil {
		t.Fatal(err)
	}
	serve.Flags().String("new-flag", "", "added after the pages were built")
	if err := os.Remove(filepath.Join(dir, "tool.8.gz")); err != nil {
		t.Fatal(err)
	}
	err = CheckMan(root, dir)
	if err == nil || !strings.Contains(err.Error(), "tool.8.gz") || !strings.Contains(err.Error(), "--new-flag") {
		t.Errorf("CheckMan = %v; want the missing page and the undocumented flag", err)
	}
}

func TestGenDocsNeedsADirectory(t *testing.T) {
	root := docsTree()
	root.SetArgs([]string{"gen-docs"})
	root.SilenceErrors, root.SilenceUsage = true, true
	if err := root.Execute(); ExitCode(err) != ExitUsage {
		t.Errorf("gen-docs without dirs: %v; want a usage error", err)
	}
}
