// Command vcpe-package builds one deb or rpm of vcpe with nfpm, used as a
// library: it reads an nfpm configuration (environment variables expanded
// as nfpm does) and, unlike the nfpm command, expands a glob in a "doc"
// entry, so every generated man page is marked as documentation in the
// rpm without being listed by hand. make packages runs it.
package main

import (
	"flag"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/goreleaser/nfpm/v2"
	_ "github.com/goreleaser/nfpm/v2/deb"
	"github.com/goreleaser/nfpm/v2/files"
	_ "github.com/goreleaser/nfpm/v2/rpm"
)

func main() {
	config := flag.String("config", "", "nfpm configuration file")
	packager := flag.String("packager", "", "deb or rpm")
	target := flag.String("target", ".", "directory for the package")
	flag.Parse()
	if *config == "" || *packager == "" {
		fmt.Fprintln(os.Stderr, "usage: vcpe-package --config FILE --packager deb|rpm [--target DIR]")
		os.Exit(2)
	}
	out, err := build(*config, *packager, *target)
	if err != nil {
		fmt.Fprintf(os.Stderr, "vcpe-package %s (%s): %v\n", *config, *packager, err)
		os.Exit(1)
	}
	fmt.Println(out)
}

func build(config, packager, dir string) (string, error) {
	cfg, err := nfpm.ParseFile(config)
	if err != nil {
		return "", err
	}
	info, err := cfg.Get(packager)
	if err != nil {
		return "", err
	}
	if info.Contents, err = expandDocGlobs(info.Contents, packager); err != nil {
		return "", err
	}
	info = nfpm.WithDefaults(info)
	pkg, err := nfpm.Get(packager)
	if err != nil {
		return "", err
	}
	target := filepath.Join(dir, pkg.ConventionalFileName(info))
	f, err := os.Create(target)
	if err != nil {
		return "", err
	}
	info.Target = target
	if err := pkg.Package(info, f); err != nil {
		f.Close()
		os.Remove(target)
		return "", err
	}
	return target, f.Close()
}

// expandDocGlobs replaces each "doc" entry whose source is a glob with
// one entry per match, installed under its destination directory. nfpm
// drops "doc" entries from packages other than rpm: there they become
// plain files.
func expandDocGlobs(in files.Contents, packager string) (files.Contents, error) {
	var out files.Contents
	for _, c := range in {
		if c.Type == files.TypeRPMDoc && packager != "rpm" {
			cc := *c
			cc.Type = files.TypeFile
			c = &cc
		}
		if c.Type != files.TypeRPMDoc && c.Type != files.TypeFile || !strings.ContainsAny(c.Source, "*?[") {
			out = append(out, c)
			continue
		}
		matches, err := filepath.Glob(c.Source)
		if err != nil || len(matches) == 0 {
			return nil, fmt.Errorf("doc glob %s matches no file (%v)", c.Source, err)
		}
		for _, m := range matches {
			cc := *c
			cc.Source = m
			cc.Destination = path.Join(c.Destination, filepath.Base(m))
			out = append(out, &cc)
		}
	}
	return out, nil
}
