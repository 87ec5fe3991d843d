package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// WireGuardModule is the module whose main package is the upstream
// wireguard-go daemon.
const WireGuardModule = "golang.zx2c4.com/wireguard"

// Binaries are the daemons a run starts.
type Binaries struct {
	// WireGuardGo is upstream wireguard-go, built from the module version
	// in go.mod.
	WireGuardGo string
	// UAPIDir is where that wireguard-go puts its UAPI sockets (set at link
	// time, so the runs never share /var/run/wireguard with anyone).
	UAPIDir string
	// Vcped is vcpe's device daemon; empty when VcpedErr says why.
	Vcped    string
	VcpedErr string
	// Hub is vcpe-hub, the hub case's hub; empty when HubErr says why.
	Hub    string
	HubErr string
	// WireGuardVersion is the wireguard module version from go.mod.
	WireGuardVersion string
}

// ModuleRoot returns the directory of the vcpe module that contains the
// working directory.
func ModuleRoot(ctx context.Context) (string, error) {
	out, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("find the vcpe module: go env GOMOD: %w", err)
	}
	mod := strings.TrimSpace(string(out))
	if mod == "" || mod == os.DevNull {
		return "", errors.New("find the vcpe module: not inside it (run from the repository)")
	}
	return filepath.Dir(mod), nil
}

// Build builds upstream wireguard-go and, when the module has it, vcped
// into dir, statically. A missing cmd/vcped is not an error: VcpedErr says
// so and the vcpe variant reports it. A non-empty vcped is a vcped binary
// to use instead of building one.
func Build(ctx context.Context, root, dir, vcped string) (Binaries, error) {
	b := Binaries{
		WireGuardGo: filepath.Join(dir, "wireguard-go"),
		UAPIDir:     filepath.Join(dir, "wg-uapi"),
		Vcped:       filepath.Join(dir, "vcped"),
		Hub:         filepath.Join(dir, "vcpe-hub"),
	}
	if err := os.MkdirAll(b.UAPIDir, 0o700); err != nil {
		return b, fmt.Errorf("build: %w", err)
	}
	v, err := goCmd(ctx, root, "list", "-m", "-f", "{{.Version}}", WireGuardModule)
	if err != nil {
		return b, fmt.Errorf("build wireguard-go: %w", err)
	}
	b.WireGuardVersion = strings.TrimSpace(v)
	// The only change from upstream: its UAPI socket directory, a linker
	// variable wireguard-go provides for exactly this.
	if _, err := goCmd(ctx, root, "build", "-trimpath",
		"-ldflags", "-X "+WireGuardModule+"/ipc.socketDirectory="+b.UAPIDir,
		"-o", b.WireGuardGo, WireGuardModule); err != nil {
		return b, fmt.Errorf("build wireguard-go: %w", err)
	}
	if _, err := goCmd(ctx, root, "build", "-trimpath", "-o", b.Hub, "./cmd/vcpe-hub"); err != nil {
		b.Hub, b.HubErr = "", fmt.Sprintf("not available: %v", err)
	}
	if vcped != "" {
		if _, err := exec.LookPath(vcped); err != nil {
			return b, fmt.Errorf("vcped binary %s: %w", vcped, err)
		}
		if b.Vcped, err = filepath.Abs(vcped); err != nil {
			return b, fmt.Errorf("vcped binary %s: %w", vcped, err)
		}
		return b, nil
	}
	if _, err := os.Stat(filepath.Join(root, "cmd", "vcped")); errors.Is(err, os.ErrNotExist) {
		b.Vcped, b.VcpedErr = "", "not available: cmd/vcped not present"
		return b, nil
	}
	if _, err := goCmd(ctx, root, "build", "-trimpath", "-o", b.Vcped, "./cmd/vcped"); err != nil {
		b.Vcped, b.VcpedErr = "", fmt.Sprintf("not available: %v", err)
	}
	return b, nil
}

func goCmd(ctx context.Context, dir string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("go %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(errb.String()))
	}
	return out.String(), nil
}
