//go:build !linux

package controller

// HostNetworksOfHost is empty outside Linux: the hub runs on Linux only.
func HostNetworksOfHost() ([]HostNetwork, error) { return nil, nil }
