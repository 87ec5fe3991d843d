// Package deploy holds vcpe's packaging and fleet automation, and the tests
// that keep them true: nfpm configurations (nfpm/), systemd units
// (systemd/), maintainer scripts (scripts/), the hub's example
// configuration (etc/), Ansible roles (ansible/) and the tools module
// (tools/) that builds the packages. It has no Go code of its own: make
// packages builds, tests check. The tests that install packages into the
// real root file system live with the lab (cmd/vcpe-lab/lab), which runs
// them as root.
package deploy
