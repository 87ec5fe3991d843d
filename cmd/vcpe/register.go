package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/openvcpe/vcpe/api"
	"github.com/openvcpe/vcpe/cmd/internal/cli"
	"github.com/openvcpe/vcpe/internal/device"
	"github.com/openvcpe/vcpe/provision"
)

type registerFlags struct {
	controller  string
	fingerprint string
	sn          string
	advertise   []string
	keyFile     string
	stateDir    string
	json        bool
	timeout     time.Duration
}

func newRegisterCmd() *cobra.Command {
	f := registerFlags{}
	cmd := &cobra.Command{
		Use:   "register",
		Short: "Register this device with the controller (SN + key) and store its identity",
		Long: `Register this device with the controller. The key is read from --key-file, the
VCPE_KEY environment variable, or a masked prompt when stdin is a terminal —
never from the command line. The controller's certificate must come from the
CA whose fingerprint --controller-fingerprint pins (vcpe-hub serve prints it).
The WireGuard private key is made here and never leaves this host; identity
and configuration go to STATE-DIR/device.json (0600).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runRegister(cmd, f) },
	}
	fl := cmd.Flags()
	fl.StringVar(&f.controller, "controller", "", "controller URL, https://HOST:PORT")
	fl.StringVar(&f.fingerprint, "controller-fingerprint", "", "the controller CA's fingerprint, sha256:<hex>")
	fl.StringVar(&f.sn, "sn", "", "the device's serial number")
	fl.StringSliceVar(&f.advertise, "advertise", nil, "LAN prefixes to advertise, comma-separated or repeated (for example 198.19.1.0/24)")
	fl.StringVar(&f.keyFile, "key-file", "", "file holding the device key")
	fl.StringVar(&f.stateDir, "state-dir", defaultStateDir(), "device state directory ($VCPE_STATE_DIR)")
	fl.BoolVar(&f.json, "json", false, "print a JSON document on stdout")
	fl.DurationVar(&f.timeout, "timeout", 30*time.Second, "give up on the controller after this long")
	return cmd
}

func runRegister(cmd *cobra.Command, f registerFlags) error {
	for _, r := range []struct{ name, val string }{{"--controller", f.controller}, {"--controller-fingerprint", f.fingerprint}, {"--sn", f.sn}} {
		if strings.TrimSpace(r.val) == "" {
			return cli.Usagef("%s is required", r.name)
		}
	}
	if err := api.ValidateSN(strings.TrimSpace(f.sn)); err != nil {
		return &cli.UsageError{Err: err}
	}
	if _, err := device.ParseControllerURL(f.controller); err != nil {
		return &cli.UsageError{Err: err}
	}
	if _, err := device.ParseFingerprint(f.fingerprint); err != nil {
		return &cli.UsageError{Err: err}
	}
	adv, err := provision.ParseAdvertise(f.advertise)
	if err != nil {
		return &cli.UsageError{Err: err}
	}
	key, err := readDeviceKey(cmd, f.keyFile)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(cmd.Context(), f.timeout)
	defer cancel()
	st, err := device.Register(ctx, device.RegisterParams{
		StateDir: f.stateDir, Controller: f.controller, Fingerprint: f.fingerprint,
		SN: strings.TrimSpace(f.sn), Key: key, Advertise: adv,
	})
	if err != nil {
		var ae *api.Error
		if errors.As(err, &ae) {
			err = fmt.Errorf("registration refused (%s): %w", ae.Code, err)
			if ae.Code == api.CodeInvalidInput {
				return &cli.UsageError{Err: err}
			}
		}
		return err
	}
	path := filepath.Join(f.stateDir, device.StateFile)
	cfg := st.Config
	if f.json {
		return cli.WriteJSON(cmd.OutOrStdout(), map[string]any{"state_file": path, "config": cfg})
	}
	w := cmd.OutOrStdout()
	fmt.Fprintf(w, "registered %s: instance %s, %s\n", cfg.SN, cfg.InstanceName, cfg.Role)
	fmt.Fprintf(w, "overlay address: %s (hub %s at %s)\n", cfg.OverlayAddr, cfg.HubOverlayAddr, cfg.HubEndpoint)
	fmt.Fprintf(w, "advertised:      %s\n", joinRegistered(cfg.Advertised))
	fmt.Fprintf(w, "learned routes:  %s\n", joinRegistered(cfg.Routes))
	fmt.Fprintf(w, "state:           %s\n", path)
	return nil
}

func joinRegistered[T fmt.Stringer](xs []T) string {
	if len(xs) == 0 {
		return "none"
	}
	s := make([]string, len(xs))
	for i, x := range xs {
		s[i] = x.String()
	}
	return strings.Join(s, ", ")
}

// readDeviceKey returns the device key from --key-file, VCPE_KEY, or a masked
// prompt on a terminal.
func readDeviceKey(cmd *cobra.Command, keyFile string) (string, error) {
	if keyFile != "" {
		b, err := os.ReadFile(keyFile)
		if err != nil {
			return "", cli.Usagef("--key-file: %v", err)
		}
		if k := strings.TrimSpace(string(b)); k != "" {
			return k, nil
		}
		return "", cli.Usagef("--key-file %s is empty: put the device key issued with the SN in it", keyFile)
	}
	if k := strings.TrimSpace(os.Getenv("VCPE_KEY")); k != "" {
		return k, nil
	}
	fd := int(os.Stdin.Fd())
	if !term.IsTerminal(fd) {
		return "", cli.Usagef("no device key: pass --key-file FILE or set VCPE_KEY (a prompt needs a terminal)")
	}
	fmt.Fprint(cmd.ErrOrStderr(), "device key: ")
	b, err := term.ReadPassword(fd)
	fmt.Fprintln(cmd.ErrOrStderr())
	if err != nil {
		return "", fmt.Errorf("read device key: %w", err)
	}
	if k := strings.TrimSpace(string(b)); k != "" {
		return k, nil
	}
	return "", cli.Usagef("the device key is empty")
}
