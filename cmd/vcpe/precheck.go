package main

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"slices"
	"strings"

	"github.com/mattn/go-isatty"
	"github.com/spf13/cobra"

	"github.com/openvcpe/vcpe/cmd/internal/cli"
	"github.com/openvcpe/vcpe/internal/device"
	"github.com/openvcpe/vcpe/precheck"
)

func newPrecheckCmd() *cobra.Command {
	var (
		jsonOut           bool
		save, root, wanIf string
		controller        string
		fingerprint       string
	)
	cmd := &cobra.Command{
		Use:   "precheck",
		Short: "Check that this host can become a vCPE (OS, kernel, size, NIC, ports, firewall, ICMP, shaping)",
		Long: `Check that this host can become a vCPE. Exit 0 when nothing fails (warnings
allowed), 1 when a check fails, 2 on a usage or input error.

--save DIR writes the host snapshot the checks judged; --root DIR judges a
saved (or hand-edited) snapshot instead of this host.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			opts := precheck.Options{WANInterface: wanIf}
			if controller != "" {
				u, err := url.Parse(controller)
				if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Hostname() == "" {
					return cli.Usagef("--controller %q: want the controller URL, for example https://198.18.0.1:8443", controller)
				}
				opts.Controller = u
				if fingerprint != "" && u.Scheme != "https" {
					return cli.Usagef("--controller %q: the outside-in check (--controller-fingerprint) needs the https:// URL", controller)
				}
				if fingerprint != "" && root == "" {
					if _, err := device.ParseFingerprint(fingerprint); err != nil {
						return cli.Usagef("%v", err)
					}
					opts.OutsideIn = outsideInHook(controller, fingerprint, wanIf)
					opts.HubEndpoints = hubEndpoints(cmd.Context(), controller, fingerprint)
				}
			} else if fingerprint != "" {
				return cli.Usagef("--controller-fingerprint needs --controller URL")
			}
			ctx := cmd.Context()
			var snap *precheck.Snapshot
			var err error
			if root != "" {
				snap, err = precheck.Load(root)
				if errors.Is(err, precheck.ErrNoSnapshot) {
					return cli.Usagef("--root %s: no such directory; give a snapshot directory written by 'vcpe precheck --save DIR'", root)
				}
				if err != nil {
					return cli.Usagef("--root %s: %v", root, err)
				}
			} else if snap, err = precheck.Gather(ctx, precheck.GatherOptions{}); err != nil {
				return fmt.Errorf("gather host snapshot: %w", err)
			}
			if wanIf != "" && !slices.Contains(snap.Interfaces(), wanIf) {
				return cli.Usagef("--wan-if %s: no such interface (have: %s); name the Internet-facing interface", wanIf, strings.Join(snap.Interfaces(), ", "))
			}
			if save != "" {
				if err := snap.Save(save); err != nil {
					return fmt.Errorf("--save %s: %w", save, err)
				}
				fmt.Fprintf(cmd.ErrOrStderr(), "snapshot saved to %s (judge it again with: vcpe precheck --root %s)\n", save, save)
			}
			rep := precheck.Run(ctx, snap, opts)
			out := cmd.OutOrStdout()
			if jsonOut {
				err = rep.WriteJSON(out)
			} else {
				err = rep.WriteText(out, useColor(out))
			}
			if err != nil {
				return fmt.Errorf("write report: %w", err)
			}
			if !rep.OK {
				return cli.Failed(errors.New("precheck: a check failed"))
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.BoolVar(&jsonOut, "json", false, "print the report as JSON on stdout")
	f.StringVar(&save, "save", "", "write the host snapshot to `DIR`")
	f.StringVar(&root, "root", "", "judge the snapshot in `DIR` instead of this host")
	f.StringVar(&wanIf, "wan-if", "", "the Internet-facing interface `IF` (default: the one of the IPv4 default route)")
	f.StringVar(&controller, "controller", "", "controller `URL` to reach over TCP and UDP 4500 (live only)")
	f.StringVar(&fingerprint, "controller-fingerprint", "", "with --controller: the controller's CA fingerprint; wan.internet then asks the controller to probe UDP 4500 from outside")
	return cmd
}

// useColor is true when w is a terminal and NO_COLOR is unset.
func useColor(w any) bool {
	if _, ok := os.LookupEnv("NO_COLOR"); ok {
		return false
	}
	f, ok := w.(*os.File)
	return ok && isatty.IsTerminal(f.Fd())
}
