package controller_test

import (
	"context"
	"database/sql"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	_ "modernc.org/sqlite"

	"github.com/openvcpe/vcpe/api"
	"github.com/openvcpe/vcpe/controller"
	"github.com/openvcpe/vcpe/controller/controllertest"
	"github.com/openvcpe/vcpe/internal/device"
)

// TestChurnKeepsTheStoreFlat runs 1,000 register/release cycles of one
// device, each from a new WireGuard key, half released with the
// credential and half by key proof: the credential rows stay at most one
// per device (the latest ended one), and the controller's heap and the
// store's file are compared between cycle 100 and cycle 1,000 (logged as
// ratios; the row count is what is asserted).
func TestChurnKeepsTheStoreFlat(t *testing.T) {
	if testing.Short() {
		t.Skip("churn: 1,000 cycles")
	}
	h := controllertest.Serve(t)
	ctx := context.Background()
	inst, err := h.Admin().CreateInstance(ctx, controller.CreateInstanceRequest{Name: "churn"})
	if err != nil {
		t.Fatal(err)
	}
	sn, key := inst.Devices[0].SN, inst.Devices[0].Key
	c := h.Client(netip.MustParseAddr("198.18.0.11"))
	dbPath := filepath.Join(h.StateDir, controller.StoreFile)
	db, err := sql.Open("sqlite", "file:"+dbPath+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows := func() int {
		var n int
		if err := db.QueryRow(`SELECT count(*) FROM credentials`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	measure := func() (heap uint64, file int64) {
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		fi, _ := os.Stat(dbPath)
		wal, _ := os.Stat(dbPath + "-wal")
		file = fi.Size()
		if wal != nil {
			file += wal.Size()
		}
		return m.HeapAlloc, file
	}
	var heap0 uint64
	var file0 int64
	for i := range 1000 {
		if i == 100 {
			heap0, file0 = measure()
		}
		priv, _ := api.GeneratePrivateKey()
		res, err := c.Register(ctx, device.RegisterRequest{SN: sn, Key: key, PublicKey: priv.PublicKey()})
		if err != nil {
			t.Fatalf("cycle %d: register: %v", i, err)
		}
		if i%2 == 0 {
			if err := c.WithCredential(res.Credential).Release(ctx); err != nil {
				t.Fatalf("cycle %d: release: %v", i, err)
			}
		} else if rel, err := c.ReleaseWithKey(ctx, sn, priv); err != nil || !rel {
			t.Fatalf("cycle %d: release by key: %v, %v", i, rel, err)
		}
		if n := rows(); n > 1 {
			t.Fatalf("cycle %d: %d credential rows for one device; want at most 1 (the latest ended one)", i, n)
		}
	}
	heap1, file1 := measure()
	if r := float64(heap1) / float64(heap0); r > 2 {
		t.Errorf("the heap grew %.2f times over 900 cycles; want flat", r)
	}
	t.Logf("1,000 register/release cycles: controller+test heap %d → %d B (ratio %.2f); store file %d → %d B (ratio %.2f; the audit log is the part that grows)",
		heap0, heap1, float64(heap1)/float64(heap0), file0, file1, float64(file1)/float64(file0))
}
