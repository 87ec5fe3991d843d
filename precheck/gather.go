package precheck

import (
	"context"
	"errors"
	"os/exec"
	"strings"
)

// Runner runs a command and returns its standard output. The command runner
// is injectable so tests can stand in for iptables-save and nft.
type Runner interface {
	Output(ctx context.Context, name string, args ...string) ([]byte, error)
}

// ExecRunner runs real commands.
type ExecRunner struct{}

// Output runs name with args and returns stdout; a failure carries stderr.
func (ExecRunner) Output(ctx context.Context, name string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	out, err := cmd.Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) && len(ee.Stderr) > 0 {
			return nil, errors.New(firstLine(string(ee.Stderr)))
		}
		return nil, err
	}
	return out, nil
}

func firstLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	return s
}

// GatherOptions tune Gather. The zero value gathers this host.
type GatherOptions struct {
	// Runner runs iptables-save, ip6tables-save and nft; nil means ExecRunner.
	Runner Runner
	// Root is where the plain files are read from; empty means "/".
	Root string
}

// snapshotCommands are the commands whose output the snapshot keeps.
var snapshotCommands = []struct {
	file string
	name string
	args []string
}{
	{fileIptables, "iptables-save", nil},
	{fileIp6tables, "ip6tables-save", nil},
	{fileNft, "nft", []string{"-j", "list", "ruleset"}},
}
