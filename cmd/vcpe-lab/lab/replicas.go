package lab

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/openvcpe/vcpe/controller"
	"github.com/openvcpe/vcpe/internal/atomicfile"
)

// Replicated is the lab's replicated control plane (vcpe-lab up
// --controllers N --database postgres): PostgreSQL on the hub node (as
// nobody, on a unix socket only), N controller processes on ports 8443,
// 8444, … of the hub's WAN address, and a separate hub process (the
// tunnel end) configured by them with a hub credential.
type Replicated struct {
	Controllers int
}

// ControllerURLs are the URLs of n controller replicas.
func ControllerURLs(n int) []string {
	var out []string
	for i := range n {
		out = append(out, fmt.Sprintf("https://%s:%d", HubWAN, ControllerAddr.Port()+uint16(i)))
	}
	return out
}

// pgDirFile records where the lab's PostgreSQL lives (outside the run
// directory, which only root may enter), so Down removes it.
const pgDirFile = "postgres.dir"

// StartDatabase initialises and starts PostgreSQL on the hub node and
// returns its URL.
func (l *Lab) StartDatabase(ctx context.Context) (string, error) {
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin/postgres")
	sort.Strings(dirs)
	if len(dirs) == 0 {
		return "", fmt.Errorf("--database postgres needs the postgresql package: apt-get install postgresql (make deps)")
	}
	bin := filepath.Dir(dirs[len(dirs)-1])
	u, err := user.Lookup("nobody")
	if err != nil {
		return "", fmt.Errorf("PostgreSQL runs as nobody: %w", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	dir, err := os.MkdirTemp("", "vcpe-lab-pg-")
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(l.Path("hub"), 0o700); err != nil {
		return "", err
	}
	if err := atomicfile.WriteFile(l.Path("hub", pgDirFile), []byte(dir), 0o600); err != nil {
		return "", err
	}
	if err := os.Chown(dir, uid, gid); err != nil {
		return "", err
	}
	as := []string{"setpriv", "--reuid=" + u.Uid, "--regid=" + u.Gid, "--clear-groups"}
	data := filepath.Join(dir, "data")
	if out, err := l.Run(ctx, "hub", append(as, filepath.Join(bin, "initdb"), "-D", data, "-U", "vcpe", "-A", "trust", "-E", "UTF8", "--locale=C", "--no-sync")...); err != nil {
		return "", fmt.Errorf("initdb: %w\n%s", err, out)
	}
	if _, err := l.StartDaemon("hub", "postgres", append(as, filepath.Join(bin, "postgres"), "-D", data, "-k", dir, "-c", "listen_addresses=", "-F"), []string{"LC_ALL=C"}); err != nil {
		return "", err
	}
	sock := filepath.Join(dir, ".s.PGSQL.5432")
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, err := os.Stat(sock); err == nil {
			break
		}
		if time.Now().After(deadline) {
			return "", fmt.Errorf("PostgreSQL did not start within 30 s:\n%s", l.DaemonLog("hub", "postgres"))
		}
		time.Sleep(100 * time.Millisecond)
	}
	return "postgres://vcpe@/postgres?host=" + dir + "&sslmode=disable", nil
}

// removeDatabase removes the PostgreSQL directory of the lab (its server
// is gone with the hub namespace).
func (l *Lab) removeDatabase() error {
	b, err := os.ReadFile(l.Path("hub", pgDirFile))
	if err != nil {
		return nil
	}
	dir := strings.TrimSpace(string(b))
	if !strings.HasPrefix(filepath.Base(dir), "vcpe-lab-pg-") {
		return fmt.Errorf("%s names %q, not a lab database directory: left alone", pgDirFile, dir)
	}
	return os.RemoveAll(dir)
}

// ControllerState is the state dir of controller replica i (0 is
// HubState, where admin commands go).
func (l *Lab) ControllerState(i int) string {
	if i == 0 {
		return l.HubState()
	}
	return l.Path("hub", fmt.Sprintf("state%d", i+1))
}

// HubProcessState is the state dir of the separate hub process.
func (l *Lab) HubProcessState() string { return l.Path("hub", "hubstate") }

// StartReplicated starts the database, n controllers and the hub process,
// and returns the controllers' CA fingerprint.
func (l *Lab) StartReplicated(ctx context.Context, b Binaries, n int) (string, error) {
	db, err := l.StartDatabase(ctx)
	if err != nil {
		return "", err
	}
	urls := ControllerURLs(n)
	for i := range n {
		argv := []string{b.Hub, "serve", "--role", "controller", "--state", l.ControllerState(i),
			"--listen", strings.TrimPrefix(urls[i], "https://"), "--hub-endpoint", HubEndpoint.String(),
			"--cloud-prefix", CloudPrefix.String()}
		// The URL has no password (trust on a unix socket); it goes in the
		// environment as a production one would.
		if _, err := l.StartDaemon("hub", fmt.Sprintf("vcpe-hub-ctl%d", i+1), argv, []string{"VCPE_HUB_DATABASE=" + db}); err != nil {
			return "", err
		}
	}
	wctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	for i := range n {
		if err := l.WaitTCP(wctx, "site-a", strings.TrimPrefix(urls[i], "https://")); err != nil {
			return "", fmt.Errorf("controller %d: %w\n%s", i+1, err, l.DaemonLog("hub", fmt.Sprintf("vcpe-hub-ctl%d", i+1)))
		}
	}
	fp, err := controller.ReadFingerprint(l.HubState())
	if err != nil {
		return "", err
	}
	var cred controller.HubCredential
	out, err := l.Run(ctx, "hub", b.Hub, "hub", "credential", "lab-hub", "--state", l.HubState(), "--json")
	if err != nil {
		return "", err
	}
	if err := json.Unmarshal([]byte(out), &cred); err != nil {
		return "", fmt.Errorf("vcpe-hub hub credential --json: %w", err)
	}
	credFile := l.Path("hub", "hub.cred")
	if err := atomicfile.WriteFile(credFile, []byte(cred.Credential+"\n"), 0o600); err != nil {
		return "", err
	}
	if err := os.MkdirAll(l.Path("hub", "uapi"), 0o700); err != nil {
		return "", err
	}
	argv := []string{b.Hub, "serve", "--role", "hub", "--state", l.HubProcessState(), "--controller-fingerprint", fp,
		"--hub-credential-file", credFile, "--hub-endpoint", HubEndpoint.String(), "--uapi-dir", l.Path("hub", "uapi")}
	for _, u := range urls {
		argv = append(argv, "--controller", u)
	}
	if _, err := l.StartDaemon("hub", "vcpe-hub", argv, nil); err != nil {
		return "", err
	}
	return fp, nil
}
