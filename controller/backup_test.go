package controller_test

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/openvcpe/vcpe/controller"
	"github.com/openvcpe/vcpe/controller/controllertest"
	"github.com/openvcpe/vcpe/internal/device"
)

// TestBackupRestoreRoundTrip backs up a controller while two registered
// devices keep syncing and an admin keeps creating instances, restores the
// backup into an empty directory, and checks a controller started on it
// has the same identity and serves the same devices with their existing
// credentials: no re-registration.
func TestBackupRestoreRoundTrip(t *testing.T) {
	h := controllertest.Serve(t)
	inst := newInstance(t, h, "shop1")
	var devs []*device.State
	for i, from := range []netip.Addr{site1, site2} {
		st, err := device.Register(ctx(t), device.RegisterParams{
			StateDir: filepath.Join(t.TempDir(), "dev"), Controller: controllertest.URL, Fingerprint: h.Fingerprint,
			SN: inst.Devices[i].SN, Key: inst.Devices[i].Key, Advertise: []netip.Prefix{lan1},
			Client: h.ClientOptions(from),
		})
		if err != nil {
			t.Fatalf("register %s: %v", inst.Devices[i].SN, err)
		}
		devs = append(devs, st)
	}

	// Devices sync and the admin writes while the backup runs.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var syncs, syncErrs atomic.Int64
	for i, st := range devs {
		c, err := device.NewClientFromState(st, h.ClientOptions([]netip.Addr{site1, site2}[i]))
		if err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				if _, err := c.DeviceConfig(context.Background()); err != nil {
					syncErrs.Add(1)
				}
				syncs.Add(1)
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-time.After(5 * time.Millisecond):
			}
			h.Admin().CreateInstance(context.Background(), controller.CreateInstanceRequest{Name: "busy" + string(rune('a'+i%26)) + time.Now().Format("150405.000000")[7:]})
		}
	}()
	var backup bytes.Buffer
	time.Sleep(50 * time.Millisecond)
	m, err := controller.Backup(ctx(t), h.StateDir, time.Now(), &backup)
	close(stop)
	wg.Wait()
	if err != nil {
		t.Fatalf("backup of a running controller: %v", err)
	}
	if syncErrs.Load() > 0 || syncs.Load() == 0 {
		t.Errorf("device syncs during the backup: %d, %d failed", syncs.Load(), syncErrs.Load())
	}
	names := map[string]bool{}
	for _, f := range m.Files {
		names[f.Name] = true
	}
	for _, want := range []string{"ca.crt", "ca.key", "server.crt", "server.key", controller.HubKeyFile, controller.StoreFile} {
		if !names[want] {
			t.Errorf("backup lacks %s (has %v)", want, names)
		}
	}
	if names[controller.AdminSocket] || names[controller.StoreFile+"-wal"] || m.Fingerprint != h.Fingerprint || m.Schema == 0 {
		t.Errorf("manifest %+v", m)
	}
	tr := tar.NewReader(bytes.NewReader(backup.Bytes()))
	for {
		hd, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if hd.Mode&0o077 != 0 {
			t.Errorf("backup member %s has mode %o; want 0600", hd.Name, hd.Mode)
		}
	}

	// Refusals leave the target as it was.
	if _, err := controller.Restore(bytes.NewReader(backup.Bytes()), h.StateDir); !errors.Is(err, controller.ErrStateNotEmpty) {
		t.Errorf("restore over a running controller's state: %v; want ErrStateNotEmpty", err)
	}
	damaged := bytes.Clone(backup.Bytes())
	if i := bytes.Index(damaged, []byte("BEGIN CERTIFICATE")); i > 0 {
		damaged[i+40] ^= 1
	}
	bad := filepath.Join(t.TempDir(), "bad")
	if _, err := controller.Restore(bytes.NewReader(damaged), bad); err == nil {
		t.Error("a damaged backup restored")
	}
	if _, err := os.Stat(bad); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a failed restore left %s: %v", bad, err)
	}

	// Restore into an empty directory (what systemd's StateDirectory is).
	restored := filepath.Join(t.TempDir(), "restored")
	if err := os.Mkdir(restored, 0o700); err != nil {
		t.Fatal(err)
	}
	if _, err := controller.Restore(bytes.NewReader(backup.Bytes()), restored); err != nil {
		t.Fatalf("restore: %v", err)
	}
	fi, err := os.Stat(restored)
	if err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("restored dir: %v mode %v; want 0700", err, fi.Mode().Perm())
	}
	for name := range names {
		if fi, err := os.Stat(filepath.Join(restored, name)); err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("restored %s: %v; want mode 0600", name, err)
		}
	}
	h.Stop()
	h2 := controllertest.Serve(t, func(o *controller.Options) { o.StateDir = restored })
	if h2.Fingerprint != h.Fingerprint || h2.HubPublicKey() != h.HubPublicKey() {
		t.Fatalf("restored identity: fingerprint %s, hub key %s; want %s, %s", h2.Fingerprint, h2.HubPublicKey(), h.Fingerprint, h.HubPublicKey())
	}
	for i, st := range devs {
		c, err := device.NewClientFromState(st, h2.ClientOptions([]netip.Addr{site1, site2}[i]))
		if err != nil {
			t.Fatal(err)
		}
		cfg, err := c.DeviceConfig(ctx(t))
		if err != nil {
			t.Fatalf("device %s on the restored controller, with its existing credential: %v", st.SN, err)
		}
		if cfg.OverlayAddr != st.Config.OverlayAddr || cfg.Role != st.Config.Role {
			t.Errorf("device %s on the restored controller: overlay %v role %s; want %v %s", st.SN, cfg.OverlayAddr, cfg.Role, st.Config.OverlayAddr, st.Config.Role)
		}
	}
	if got := len(h2.HubConfig().Peers); got != 2 {
		t.Errorf("restored hub config has %d peers; want the 2 registered devices", got)
	}
}
