package precheck

import "github.com/openvcpe/vcpe/internal/command"

// GatherOptions tune Gather. The zero value gathers this host.
type GatherOptions struct {
	// Runner runs iptables-save, ip6tables-save and nft; nil means
	// command.Exec. Its errors name the command.
	Runner command.Runner
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
