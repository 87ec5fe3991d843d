package main

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/openvcpe/vcpe/cmd/internal/cli"
	"github.com/openvcpe/vcpe/controller"
)

// adminCall runs f against the controller's admin socket with a timeout.
func adminCall(cmd *cobra.Command, g *globals, f func(ctx context.Context, c *controller.AdminClient) error) error {
	ctx, cancel := context.WithTimeout(cmd.Context(), 30*time.Second)
	defer cancel()
	return apiErr(f(ctx, controller.NewAdminClient(g.state)))
}

func newInstanceCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "instance", Short: "Create, list, show and delete instances", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return cmd.Help() }}
	var slots, quota int
	create := &cobra.Command{
		Use:   "create NAME",
		Short: "Create an instance with one SN and key per device slot (keys are shown once)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return adminCall(cmd, g, func(ctx context.Context, c *controller.AdminClient) error {
				res, err := c.CreateInstance(ctx, controller.CreateInstanceRequest{Name: args[0], Slots: slots, RouteQuota: quota})
				if err != nil {
					return err
				}
				if g.json {
					return cli.WriteJSON(cmd.OutOrStdout(), res)
				}
				fmt.Fprintf(cmd.OutOrStdout(), "instance %s (%s), %d slots, up to %d prefixes per device\n", res.Instance.Name, res.Instance.ID, res.Instance.Slots, res.Instance.RouteQuota)
				if len(res.Instance.Hubs) > 0 {
					fmt.Fprintf(cmd.OutOrStdout(), "hubs %s (primary first; vcpe-hub instance hubs changes them)\n", strings.Join(res.Instance.Hubs, ","))
				}
				var rows [][]string
				for _, d := range res.Devices {
					rows = append(rows, []string{d.SN, d.Key})
				}
				table(cmd.OutOrStdout(), "SN\tKEY", rows)
				fmt.Fprintln(cmd.ErrOrStderr(), "the keys are shown only now: hand each to its device (vcpe register reads it from --key-file, VCPE_KEY or a prompt)")
				return nil
			})
		},
	}
	create.Flags().IntVar(&slots, "slots", 2, "device slots (an active and a standby device by default), 1 to 16")
	create.Flags().IntVar(&quota, "route-quota", 0, "prefixes a device may advertise, up to 50 (default: the server's --route-quota)")
	list := &cobra.Command{
		Use: "list", Short: "List instances", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return adminCall(cmd, g, func(ctx context.Context, c *controller.AdminClient) error {
				l, err := c.ListInstances(ctx)
				if err != nil {
					return err
				}
				if g.json {
					return cli.WriteJSON(cmd.OutOrStdout(), l)
				}
				var rows [][]string
				for _, in := range l {
					reg := 0
					for _, d := range in.Devices {
						if d.Status == "registered" {
							reg++
						}
					}
					rows = append(rows, []string{in.Name, in.ID, fmt.Sprintf("%d/%d", reg, in.Slots), orDash(in.CCN), orDash(in.Active), prefixes(in.Advertised), orDash(strings.Join(in.Hubs, ","))})
				}
				table(cmd.OutOrStdout(), "NAME\tID\tREGISTERED\tCCN\tACTIVE\tADVERTISED\tHUBS", rows)
				return nil
			})
		},
	}
	show := &cobra.Command{
		Use: "show NAME|ID", Short: "Show an instance, its devices and which one is active", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return adminCall(cmd, g, func(ctx context.Context, c *controller.AdminClient) error {
				in, err := c.ShowInstance(ctx, args[0])
				if err != nil {
					return err
				}
				if g.json {
					return cli.WriteJSON(cmd.OutOrStdout(), in)
				}
				w := cmd.OutOrStdout()
				fmt.Fprintf(w, "instance:    %s (%s)\nccn:         %s\nadvertised:  %s\nroute quota: %d per device\nactive:      %s\n",
					in.Name, in.ID, orDash(in.CCN), prefixes(in.Advertised), in.RouteQuota, orDash(in.Active))
				if len(in.Hubs) > 0 {
					fmt.Fprintf(w, "hubs:        %s (primary first)\n", strings.Join(in.Hubs, ","))
				}
				fmt.Fprintln(w)
				printDevices(cmd, in.Devices)
				return nil
			})
		},
	}
	del := &cobra.Command{
		Use: "delete NAME|ID", Short: "Delete an instance; its devices stop working at once", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return adminCall(cmd, g, func(ctx context.Context, c *controller.AdminClient) error {
				if err := c.DeleteInstance(ctx, args[0]); err != nil {
					return err
				}
				if g.json {
					return cli.WriteJSON(cmd.OutOrStdout(), map[string]string{"deleted": args[0]})
				}
				fmt.Fprintf(cmd.OutOrStdout(), "deleted instance %s\n", args[0])
				return nil
			})
		},
	}
	var primary, secondary string
	hubs := &cobra.Command{
		Use:   "hubs NAME|ID --primary HUB [--secondary HUB]",
		Short: "Assign an instance's primary and secondary hub (hub groups); its devices follow at once",
		Long: `Assign an instance's hubs. Its devices keep a tunnel to both and carry
traffic through the primary while it is healthy. Without --secondary the
controller picks another hub (the one with the fewest secondaries).
vcpe-hub hub list shows the hubs.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if primary == "" {
				return cli.Usagef("--primary is required: the hub that carries the instance's traffic (vcpe-hub hub list shows the hubs)")
			}
			return adminCall(cmd, g, func(ctx context.Context, c *controller.AdminClient) error {
				in, err := c.SetInstanceHubs(ctx, args[0], primary, secondary)
				if err != nil {
					return err
				}
				if g.json {
					return cli.WriteJSON(cmd.OutOrStdout(), in)
				}
				fmt.Fprintf(cmd.OutOrStdout(), "instance %s: hubs %s\n", in.Name, strings.Join(in.Hubs, ","))
				return nil
			})
		},
	}
	hubs.Flags().StringVar(&primary, "primary", "", "the instance's primary hub")
	hubs.Flags().StringVar(&secondary, "secondary", "", "the instance's secondary hub (default: another hub, spread evenly)")
	cmd.AddCommand(create, list, show, del, hubs)
	return cmd
}

func printDevices(cmd *cobra.Command, ds []controller.DeviceInfo) {
	var rows [][]string
	for _, d := range ds {
		seen := "-"
		if d.LastSeen != nil {
			seen = d.LastSeen.UTC().Format(time.RFC3339)
		}
		rows = append(rows, []string{d.SN, d.InstanceName, strconv.Itoa(d.Slot), d.Status, orDash(d.Role), d.OverlayAddr.String(), seen})
	}
	table(cmd.OutOrStdout(), "SN\tINSTANCE\tSLOT\tSTATUS\tROLE\tOVERLAY\tLAST SEEN", rows)
}

func newDeviceCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "device", Short: "List devices, reset keys, revoke devices", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return cmd.Help() }}
	list := &cobra.Command{
		Use: "list", Short: "List device slots", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return adminCall(cmd, g, func(ctx context.Context, c *controller.AdminClient) error {
				l, err := c.ListDevices(ctx)
				if err != nil {
					return err
				}
				if g.json {
					return cli.WriteJSON(cmd.OutOrStdout(), l)
				}
				printDevices(cmd, l)
				return nil
			})
		},
	}
	reset := &cobra.Command{
		Use: "reset-key SN", Short: "Issue a new key; the old key and the device's credential stop working at once", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return adminCall(cmd, g, func(ctx context.Context, c *controller.AdminClient) error {
				res, err := c.ResetKey(ctx, args[0])
				if err != nil {
					return err
				}
				if g.json {
					return cli.WriteJSON(cmd.OutOrStdout(), res)
				}
				table(cmd.OutOrStdout(), "SN\tKEY", [][]string{{res.SN, res.Key}})
				fmt.Fprintln(cmd.ErrOrStderr(), "the key is shown only now; the device must register again with it")
				return nil
			})
		},
	}
	revoke := &cobra.Command{
		Use: "revoke SN", Short: "Revoke a device: it leaves the hub and cannot register until its key is reset", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return adminCall(cmd, g, func(ctx context.Context, c *controller.AdminClient) error {
				if err := c.Revoke(ctx, args[0]); err != nil {
					return err
				}
				if g.json {
					return cli.WriteJSON(cmd.OutOrStdout(), map[string]string{"revoked": args[0]})
				}
				fmt.Fprintf(cmd.OutOrStdout(), "revoked device %s\n", args[0])
				return nil
			})
		},
	}
	cmd.AddCommand(list, reset, revoke)
	return cmd
}

func newCCNCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "ccn", Short: "Cloud Connect Networks: create, attach, detach, list", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return cmd.Help() }}
	printCCN := func(cmd *cobra.Command, c controller.CCNInfo) error {
		if g.json {
			return cli.WriteJSON(cmd.OutOrStdout(), c)
		}
		fmt.Fprintf(cmd.OutOrStdout(), "ccn %s (%s): %s\n", c.Name, c.ID, orDash(strings.Join(c.Instances, ", ")))
		return nil
	}
	create := &cobra.Command{
		Use: "create NAME", Short: "Create a CCN", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return adminCall(cmd, g, func(ctx context.Context, c *controller.AdminClient) error {
				res, err := c.CreateCCN(ctx, args[0])
				if err != nil {
					return err
				}
				return printCCN(cmd, res)
			})
		},
	}
	attach := &cobra.Command{
		Use: "attach CCN INSTANCE", Short: "Attach an instance to a CCN (names or IDs)", Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return adminCall(cmd, g, func(ctx context.Context, c *controller.AdminClient) error {
				res, err := c.Attach(ctx, args[0], args[1])
				if err != nil {
					return err
				}
				return printCCN(cmd, res)
			})
		},
	}
	detach := &cobra.Command{
		Use: "detach CCN INSTANCE", Short: "Detach an instance from a CCN (names or IDs)", Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return adminCall(cmd, g, func(ctx context.Context, c *controller.AdminClient) error {
				res, err := c.Detach(ctx, args[0], args[1])
				if err != nil {
					return err
				}
				return printCCN(cmd, res)
			})
		},
	}
	list := &cobra.Command{
		Use: "list", Short: "List CCNs and their instances", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return adminCall(cmd, g, func(ctx context.Context, c *controller.AdminClient) error {
				l, err := c.ListCCNs(ctx)
				if err != nil {
					return err
				}
				if g.json {
					return cli.WriteJSON(cmd.OutOrStdout(), l)
				}
				var rows [][]string
				for _, c := range l {
					rows = append(rows, []string{c.Name, c.ID, orDash(strings.Join(c.Instances, ","))})
				}
				table(cmd.OutOrStdout(), "NAME\tID\tINSTANCES", rows)
				return nil
			})
		},
	}
	cmd.AddCommand(create, attach, detach, list)
	return cmd
}

func newRoutesCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "routes", Short: "Advertised prefixes and who learns them", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return cmd.Help() }}
	var ccn string
	list := &cobra.Command{
		Use: "list", Short: "List which prefixes each instance advertises and who learns them", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return adminCall(cmd, g, func(ctx context.Context, c *controller.AdminClient) error {
				rep, err := c.Routes(ctx, ccn)
				if err != nil {
					return err
				}
				if g.json {
					return cli.WriteJSON(cmd.OutOrStdout(), rep)
				}
				rows := [][]string{{"(cloud)", "-", "hub", prefixes(rep.Cloud), orDash(strings.Join(rep.CloudLearnedBy, ","))}}
				for _, e := range rep.Instances {
					rows = append(rows, []string{e.Instance, orDash(e.CCN), orDash(e.Active), prefixes(e.Prefixes), orDash(strings.Join(e.LearnedBy, ","))})
				}
				table(cmd.OutOrStdout(), "INSTANCE\tCCN\tACTIVE\tPREFIXES\tLEARNED BY", rows)
				return nil
			})
		},
	}
	list.Flags().StringVar(&ccn, "ccn", "", "only the members of this CCN (name or ID)")
	cmd.AddCommand(list)
	return cmd
}

func newAuditCmd(g *globals) *cobra.Command {
	var last int
	cmd := &cobra.Command{
		Use: "audit", Short: "Show the audit log: admin actions and registration attempts", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return adminCall(cmd, g, func(ctx context.Context, c *controller.AdminClient) error {
				l, err := c.Audit(ctx, last)
				if err != nil {
					return err
				}
				if g.json {
					return cli.WriteJSON(cmd.OutOrStdout(), l)
				}
				var rows [][]string
				for _, e := range l {
					rows = append(rows, []string{e.At.UTC().Format(time.RFC3339), e.Who, e.Action, e.Target, e.Result, e.Detail})
				}
				table(cmd.OutOrStdout(), "TIME\tWHO\tACTION\tTARGET\tRESULT\tDETAIL", rows)
				return nil
			})
		},
	}
	cmd.Flags().IntVar(&last, "last", 50, "how many of the latest entries")
	return cmd
}
