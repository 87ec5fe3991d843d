package bench

import "slices"

// tools are the commands a bench run starts, with the Debian packages that
// have them.
var tools = []struct{ cmd, pkg string }{
	{"ip", "iproute2"},
	{"ss", "iproute2"},
	{"ping", "iputils-ping"},
	{"iperf3", "iperf3"},
}

// MissingTools returns the packages whose commands lookPath (exec.LookPath)
// cannot find, each once, so that a run can say what to install before
// every variant fails on a missing command.
func MissingTools(lookPath func(string) (string, error)) []string {
	var pkgs []string
	for _, t := range tools {
		if _, err := lookPath(t.cmd); err != nil && !slices.Contains(pkgs, t.pkg) {
			pkgs = append(pkgs, t.pkg)
		}
	}
	return pkgs
}
