package cli

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/cobra/doc"
	"github.com/spf13/pflag"
)

// ManSection is the manual section of every vcpe command: they administer
// the system and run as root.
const ManSection = "8"

// DocsCommand returns the hidden "gen-docs" command of root: it writes a
// man page per command (vcpe-install.8.gz, vcpe-hub-serve.8.gz, …) and the
// bash, zsh and fish completions of the tree. The packages are built with
// it, so the pages can never drift from --help. SOURCE_DATE_EPOCH, when
// set, dates the pages (reproducible builds).
func DocsCommand(root *cobra.Command) *cobra.Command {
	var man, completions string
	cmd := &cobra.Command{
		Use:    "gen-docs",
		Short:  "Write the man pages and shell completions (used to build the packages)",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if man == "" && completions == "" {
				return Usagef("gen-docs: pass --man DIR, --completions DIR or both")
			}
			if man != "" {
				if err := GenMan(root, man); err != nil {
					return err
				}
			}
			if completions != "" {
				if err := GenCompletions(root, completions); err != nil {
					return err
				}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&man, "man", "", "directory for the gzipped man pages")
	cmd.Flags().StringVar(&completions, "completions", "", "directory for NAME.bash, _NAME (zsh) and NAME.fish")
	return cmd
}

// GenMan writes a gzipped man page of section ManSection for root and every
// available command under it into dir.
func GenMan(root *cobra.Command, dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("man pages: %w", err)
	}
	tmp, err := os.MkdirTemp(dir, ".gen-")
	if err != nil {
		return fmt.Errorf("man pages: %w", err)
	}
	defer os.RemoveAll(tmp)
	root.DisableAutoGenTag = true
	hdr := &doc.GenManHeader{Section: ManSection, Source: root.Name() + " " + root.Version, Manual: "vcpe manual"}
	if err := doc.GenManTree(root, hdr, tmp); err != nil {
		return fmt.Errorf("man pages of %s: %w", root.Name(), err)
	}
	pages, err := filepath.Glob(filepath.Join(tmp, "*."+ManSection))
	if err != nil {
		return err
	}
	for _, p := range pages {
		b, err := os.ReadFile(p)
		if err != nil {
			return fmt.Errorf("man pages: %w", err)
		}
		var z bytes.Buffer
		zw, _ := gzip.NewWriterLevel(&z, gzip.BestCompression)
		// No name or time in the gzip header: the same tree gives the
		// same bytes.
		if _, err := zw.Write(b); err != nil {
			return err
		}
		if err := zw.Close(); err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dir, filepath.Base(p)+".gz"), z.Bytes(), 0o644); err != nil {
			return fmt.Errorf("man pages: %w", err)
		}
	}
	return nil
}

// GenCompletions writes root's bash (NAME.bash), zsh (_NAME) and fish
// (NAME.fish) completion scripts into dir.
func GenCompletions(root *cobra.Command, dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("completions: %w", err)
	}
	name := root.Name()
	for file, gen := range map[string]func(*bytes.Buffer) error{
		name + ".bash": func(b *bytes.Buffer) error { return root.GenBashCompletionV2(b, true) },
		"_" + name:     func(b *bytes.Buffer) error { return root.GenZshCompletion(b) },
		name + ".fish": func(b *bytes.Buffer) error { return root.GenFishCompletion(b, true) },
	} {
		var b bytes.Buffer
		if err := gen(&b); err != nil {
			return fmt.Errorf("completion %s: %w", file, err)
		}
		if err := os.WriteFile(filepath.Join(dir, file), b.Bytes(), 0o644); err != nil {
			return fmt.Errorf("completion %s: %w", file, err)
		}
	}
	return nil
}

// CheckMan verifies the man pages GenMan wrote into dir for root's tree:
// one per command, each naming the command and documenting every flag it
// takes. It returns every problem found.
func CheckMan(root *cobra.Command, dir string) error {
	var errs []string
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		if c != root && (!c.IsAvailableCommand() || c.IsAdditionalHelpTopicCommand()) {
			return
		}
		name := strings.ReplaceAll(c.CommandPath(), " ", "-")
		page, err := readGzip(filepath.Join(dir, name+"."+ManSection+".gz"))
		if err != nil {
			errs = append(errs, err.Error())
		} else if !strings.Contains(page, `.TH "`+strings.ToUpper(name)+`"`) {
			errs = append(errs, name+": no .TH header naming the command")
		}
		c.Flags().VisitAll(func(f *pflag.Flag) {
			if !f.Hidden && err == nil && !strings.Contains(page, `\fB--`+f.Name+`\fP`) {
				errs = append(errs, fmt.Sprintf("%s: flag --%s not documented", name, f.Name))
			}
		})
		for _, s := range c.Commands() {
			walk(s)
		}
	}
	walk(root)
	if len(errs) > 0 {
		return fmt.Errorf("man pages in %s: %s", dir, strings.Join(errs, "; "))
	}
	return nil
}

func readGzip(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		return "", fmt.Errorf("%s: %w", path, err)
	}
	b, err := io.ReadAll(zr)
	if err != nil {
		return "", fmt.Errorf("%s: %w", path, err)
	}
	return string(b), nil
}
