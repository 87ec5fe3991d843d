package main

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/openvcpe/vcpe/cmd/internal/cli"
	"github.com/openvcpe/vcpe/controller"
)

func newHubCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "hub", Short: "Credentials of hub processes (vcpe-hub serve --role hub)", Args: cobra.NoArgs,
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
	return cmd
}
