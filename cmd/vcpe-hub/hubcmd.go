package main

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/openvcpe/vcpe/cmd/internal/cli"
	"github.com/openvcpe/vcpe/controller"
)

func newHubCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "hub", Short: "Hub processes (vcpe-hub serve --role hub): credentials, the hub group", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return cmd.Help() }}
	cmd.AddCommand(&cobra.Command{
		Use:   "credential NAME",
		Short: "Issue (or replace) the credential of the hub process NAME (shown once)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return adminCall(cmd, g, func(ctx context.Context, c *controller.AdminClient) error {
				res, err := c.CreateHubCredential(ctx, args[0])
				if err != nil {
					return err
				}
				if g.json {
					return cli.WriteJSON(cmd.OutOrStdout(), res)
				}
				fmt.Fprintln(cmd.OutOrStdout(), res.Credential)
				fmt.Fprintf(cmd.ErrOrStderr(), "the credential of hub %s is shown only now: put it in a 0600 file for vcpe-hub serve --role hub --hub-credential-file\n", res.Name)
				return nil
			})
		},
	})
	cmd.AddCommand(&cobra.Command{
		Use:   "list",
		Short: "List the hub group: each hub's endpoint, overlay address and how many devices have it as primary or secondary",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return adminCall(cmd, g, func(ctx context.Context, c *controller.AdminClient) error {
				l, err := c.ListHubs(ctx)
				if err != nil {
					return err
				}
				if g.json {
					return cli.WriteJSON(cmd.OutOrStdout(), l)
				}
				var rows [][]string
				for _, h := range l {
					kind := "registered"
					switch {
					case h.Controller:
						kind = "controller"
					case !h.Member:
						kind = "not in group"
					}
					seen := "-"
					if h.LastSeen != nil {
						seen = h.LastSeen.UTC().Format(time.RFC3339)
					}
					rows = append(rows, []string{h.Name, kind, h.Endpoint.String(), h.OverlayAddr.String(), strconv.Itoa(h.Primary), strconv.Itoa(h.Secondary), seen})
				}
				table(cmd.OutOrStdout(), "NAME\tKIND\tENDPOINT\tOVERLAY\tPRIMARY\tSECONDARY\tLAST SEEN", rows)
				return nil
			})
		},
	})
	cmd.AddCommand(&cobra.Command{
		Use:   "remove NAME",
		Short: "Take a registered hub out of the group; its instances move to the other hubs (it registers again if it still runs)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return adminCall(cmd, g, func(ctx context.Context, c *controller.AdminClient) error {
				if err := c.RemoveHub(ctx, args[0]); err != nil {
					return err
				}
				if g.json {
					return cli.WriteJSON(cmd.OutOrStdout(), map[string]string{"removed": args[0]})
				}
				fmt.Fprintf(cmd.OutOrStdout(), "removed hub %s\n", args[0])
				return nil
			})
		},
	})
	return cmd
}
