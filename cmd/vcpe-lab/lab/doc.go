// Package lab builds vcpe's sandbox: DESIGN.md's topology as network
// namespaces on one machine (a hub with a cloud-side host, sites with their
// LAN hosts, joined by an "internet" segment), and runs the real binaries in
// it. Every namespace is named PREFIX-NODE; Down removes every trace, and a
// failed Up removes what it made.
//
// It never touches the root namespace: links are created inside the
// namespaces that own them and every address is inside 198.18.0.0/15.
package lab
