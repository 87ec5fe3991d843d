package store

import (
	"context"
	"database/sql"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/openvcpe/vcpe/api"
	"github.com/openvcpe/vcpe/internal/pgtest"
)

// testStore is what the suite exercises: the contract both engines keep.
type testStore interface {
	Load(ctx context.Context) (*Snapshot, error)
	Changes(ctx context.Context, since uint64) (*Snapshot, error)
	Revision(ctx context.Context) (uint64, error)
	Version(ctx context.Context) (int, error)
	SetMeta(ctx context.Context, k, v string) error
	InitMeta(ctx context.Context, k, v string) (string, error)
	CreateInstance(ctx context.Context, in Instance, devs []Device) error
	UpdateInstance(ctx context.Context, in Instance) error
	UpdateAdvertised(ctx context.Context, in Instance, sn string, probe []netip.Addr) error
	DeleteInstance(ctx context.Context, id string) error
	UpdateDevice(ctx context.Context, d Device, credState string) error
	BindDevice(ctx context.Context, d Device, cred Credential, in Instance) error
	CreateCCN(ctx context.Context, c CCN) error
	PutHub(ctx context.Context, h Hub) error
	DeleteHub(ctx context.Context, name string) error
	TouchHub(ctx context.Context, name string, at time.Time) error
	SetInstanceHubs(ctx context.Context, assign map[string][]string) error
	PutNonce(ctx context.Context, nonce, sn string, expires, now time.Time) error
	TakeNonce(ctx context.Context, nonce, sn string, now time.Time) (bool, error)
	AppendAudit(ctx context.Context, e AuditEntry) error
	Audit(ctx context.Context, n int) ([]AuditEntry, error)
	Lock(ctx context.Context) (func(), error)
	Watch(ctx context.Context, changed func(live bool))
	Close() error
}

var (
	_ testStore = (*SQLite)(nil)
	_ testStore = (*Postgres)(nil)
)

// engine opens stores of one kind: open gives a fresh database, and a
// function that opens another handle on the same database (a restart, or
// a second replica).
type engine struct {
	name  string
	start func(t *testing.T) // once per run, before the cases
	open  func(t *testing.T) (testStore, func() testStore)
}

func engines() []engine {
	sqlite := engine{"sqlite", func(*testing.T) {}, func(t *testing.T) (testStore, func() testStore) {
		path := filepath.Join(t.TempDir(), "c.db")
		again := func() testStore {
			s, err := OpenSQLite(path)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.Close() })
			return s
		}
		return again(), again
	}}
	var srv *pgtest.Server
	postgres := engine{"postgres", func(t *testing.T) { srv = pgtest.Start(t) }, func(t *testing.T) (testStore, func() testStore) {
		url := srv.NewDB(t)
		again := func() testStore {
			s, err := OpenPostgres(context.Background(), url, PostgresOptions{})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.Close() })
			return s
		}
		return again(), again
	}}
	return []engine{sqlite, postgres}
}

func key(b byte) api.Key { var k api.Key; k[0] = b; k[31] = 1; return k }

var at = time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)

func fixture() (Instance, []Device) {
	in := Instance{ID: "i-1", Name: "shop1", Slots: 2, RouteQuota: 5, CreatedAt: at}
	return in, []Device{
		{SN: "SN1", InstanceID: "i-1", Slot: 0, Secret: []byte("s1"), Overlay: netip.MustParseAddr("198.18.64.2"), Status: StatusUnregistered, CreatedAt: at},
		{SN: "SN2", InstanceID: "i-1", Slot: 1, Secret: []byte("s2"), Overlay: netip.MustParseAddr("198.18.64.3"), Status: StatusUnregistered, CreatedAt: at},
	}
}

var ignoreRev = cmpopts.IgnoreFields(Snapshot{}, "Rev", "Full", "Deleted")

// TestStore runs one suite against every engine. The PostgreSQL engine
// starts a real server (internal/pgtest) for the run.
func TestStore(t *testing.T) {
	cases := []struct {
		name string
		f    func(t *testing.T, s testStore, again func() testStore, pg bool)
	}{
		{"RoundTripAcrossReopen", testRoundTrip},
		{"BindDeviceEnforcesTheSlot", testBindSlot},
		{"ReleaseKeepsOneEndedCredential", testPruneCredentials},
		{"ChangesSinceARevision", testChanges},
		{"NoncesAreSingleUse", testNonces},
		{"Audit", testAudit},
		{"InitMetaFirstWriterWins", testInitMeta},
		{"WatchSeesOtherHandles", testWatch},
		{"LockExcludesOtherHandles", testLock},
		{"SchemaVersion", testVersion},
		{"HubRegistryAndAssignments", testHubs},
	}
	for _, e := range engines() {
		t.Run(e.name, func(t *testing.T) {
			e.start(t)
			for _, c := range cases {
				t.Run(c.name, func(t *testing.T) {
					s, again := e.open(t)
					c.f(t, s, again, e.name == "postgres")
				})
			}
		})
	}
}

func testRoundTrip(t *testing.T, s testStore, again func() testStore, _ bool) {
	ctx := context.Background()
	if err := s.CreateCCN(ctx, CCN{ID: "ccn-1", Name: "corp", CreatedAt: at}); err != nil {
		t.Fatal(err)
	}
	in, devs := fixture()
	if err := s.CreateInstance(ctx, in, devs); err != nil {
		t.Fatal(err)
	}
	in.CCN = "ccn-1"
	in.Advertised = []netip.Prefix{netip.MustParsePrefix("198.19.1.0/24")}
	d := devs[0]
	d.PublicKey, d.Status, d.RegisteredSeq, d.RegisteredAt = key(1), StatusRegistered, 1, at
	d.ProbeAddrs = []netip.Addr{netip.MustParseAddr("198.19.1.1")}
	d.LANGateway = netip.MustParsePrefix("198.19.1.254/24")
	cred := Credential{Hash: make([]byte, 32), SN: "SN1", State: CredValid, CreatedAt: at}
	if err := s.BindDevice(ctx, d, cred, in); err != nil {
		t.Fatal(err)
	}
	// New routes with new probe addresses, in one transaction.
	in.Advertised = append(in.Advertised, netip.MustParsePrefix("198.19.3.0/24"))
	d.ProbeAddrs = []netip.Addr{netip.MustParseAddr("198.19.1.1"), netip.MustParseAddr("198.19.3.1")}
	if err := s.UpdateAdvertised(ctx, in, d.SN, d.ProbeAddrs); err != nil {
		t.Fatal(err)
	}
	if err := s.UpdateAdvertised(ctx, in, "SN-NONE", nil); !errors.Is(err, ErrNotFound) {
		t.Errorf("UpdateAdvertised of an unknown device: %v; want ErrNotFound", err)
	}
	if err := s.SetMeta(ctx, "generation", "7"); err != nil {
		t.Fatal(err)
	}
	s.Close()

	snap, err := again().Load(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := &Snapshot{
		Instances:   []Instance{in},
		Devices:     []Device{d, devs[1]},
		CCNs:        []CCN{{ID: "ccn-1", Name: "corp", CreatedAt: at}},
		Credentials: []Credential{cred},
		Meta:        map[string]string{"generation": "7"},
	}
	if diff := cmp.Diff(want, snap, equate, ignoreRev); diff != "" {
		t.Errorf("reloaded snapshot (-want +got):\n%s", diff)
	}
}

func testBindSlot(t *testing.T, s testStore, _ func() testStore, _ bool) {
	ctx := context.Background()
	in, devs := fixture()
	if err := s.CreateInstance(ctx, in, devs); err != nil {
		t.Fatal(err)
	}
	bind := func(sn string, k api.Key, h byte) error {
		d := devs[0]
		if sn == "SN2" {
			d = devs[1]
		}
		d.PublicKey = k
		return s.BindDevice(ctx, d, Credential{Hash: []byte{h}, SN: sn, State: CredValid}, in)
	}
	if err := bind("SN1", key(1), 1); err != nil {
		t.Fatal(err)
	}
	if err := bind("SN1", key(1), 2); err != nil {
		t.Errorf("same key again: %v", err)
	}
	if err := bind("SN1", key(2), 3); !errors.Is(err, ErrConflict) {
		t.Errorf("other key: %v; want ErrConflict", err)
	}
	if err := bind("SN2", key(1), 4); !errors.Is(err, ErrConflict) {
		t.Errorf("a second SN took the same WireGuard key: %v; want ErrConflict", err)
	}
	// Re-registering replaced the valid credential.
	snap, _ := s.Load(ctx)
	if len(snap.Credentials) != 1 || snap.Credentials[0].Hash[0] != 2 {
		t.Errorf("credentials %+v; want only the latest", snap.Credentials)
	}
	// Revoked: no binding, credentials marked.
	d := devs[0]
	d.PublicKey, d.Status = key(1), StatusRevoked
	if err := s.UpdateDevice(ctx, d, CredRevoked); err != nil {
		t.Fatal(err)
	}
	if err := bind("SN1", key(1), 5); !errors.Is(err, ErrConflict) {
		t.Errorf("revoked device bound: %v", err)
	}
	snap, _ = s.Load(ctx)
	if snap.Credentials[0].State != CredRevoked {
		t.Errorf("credential state %s; want revoked", snap.Credentials[0].State)
	}
	// A second device in an occupied slot is refused by the database.
	extra := Device{SN: "SN3", InstanceID: "i-1", Slot: 1, Secret: []byte("s3"), Overlay: netip.MustParseAddr("198.18.64.9"), Status: StatusUnregistered, CreatedAt: at}
	if err := s.CreateInstance(ctx, Instance{ID: "i-2", Name: "shop2", Slots: 1, RouteQuota: 5, CreatedAt: at}, []Device{extra}); err == nil {
		t.Error("a device was stored in a slot that is taken")
	}
	// Deleting the instance takes its devices and credentials.
	if err := s.DeleteInstance(ctx, "i-1"); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteInstance(ctx, "i-1"); !errors.Is(err, ErrNotFound) {
		t.Errorf("second delete: %v; want ErrNotFound", err)
	}
	snap, _ = s.Load(ctx)
	if len(snap.Devices)+len(snap.Credentials)+len(snap.Instances) != 0 {
		t.Errorf("left after delete: %+v", snap)
	}
}

// testPruneCredentials registers and releases one device many times: only
// the latest ended credential is kept, so churn never grows the table.
func testPruneCredentials(t *testing.T, s testStore, _ func() testStore, _ bool) {
	ctx := context.Background()
	in, devs := fixture()
	if err := s.CreateInstance(ctx, in, devs); err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		d := devs[0]
		d.PublicKey = key(byte(10 + i))
		if err := s.BindDevice(ctx, d, Credential{Hash: []byte{byte(i + 1)}, SN: d.SN, State: CredValid}, in); err != nil {
			t.Fatalf("register %d: %v", i, err)
		}
		d.PublicKey, d.Status = api.Key{}, StatusUnregistered
		if err := s.UpdateDevice(ctx, d, CredReleased); err != nil {
			t.Fatalf("release %d: %v", i, err)
		}
	}
	snap, err := s.Load(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(snap.Credentials) != 1 || snap.Credentials[0].Hash[0] != 5 || snap.Credentials[0].State != CredReleased {
		t.Errorf("credentials after 5 register/release rounds: %+v; want only the last, released", snap.Credentials)
	}
}

func testChanges(t *testing.T, s testStore, again func() testStore, _ bool) {
	ctx := context.Background()
	in, devs := fixture()
	if err := s.CreateInstance(ctx, in, devs); err != nil {
		t.Fatal(err)
	}
	in2 := Instance{ID: "i-2", Name: "shop2", Slots: 1, RouteQuota: 5, CreatedAt: at}
	dev2 := Device{SN: "SN9", InstanceID: "i-2", Slot: 0, Secret: []byte("s9"), Overlay: netip.MustParseAddr("198.18.64.9"), Status: StatusUnregistered, CreatedAt: at}
	if err := s.CreateInstance(ctx, in2, []Device{dev2}); err != nil {
		t.Fatal(err)
	}
	base, err := s.Load(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// Another handle (a replica) changes one instance, deletes the other,
	// adds a CCN and a setting.
	o := again()
	d := devs[1]
	d.PublicKey, d.Status, d.RegisteredSeq = key(7), StatusRegistered, 1
	if err := o.BindDevice(ctx, d, Credential{Hash: []byte{9}, SN: d.SN, State: CredValid, CreatedAt: at}, in); err != nil {
		t.Fatal(err)
	}
	if err := o.DeleteInstance(ctx, "i-2"); err != nil {
		t.Fatal(err)
	}
	if err := o.CreateCCN(ctx, CCN{ID: "ccn-2", Name: "lab", CreatedAt: at}); err != nil {
		t.Fatal(err)
	}
	if err := o.SetMeta(ctx, "generation", "3"); err != nil {
		t.Fatal(err)
	}
	rev, err := s.Revision(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if rev <= base.Rev {
		t.Fatalf("revision %d after changes; want more than %d", rev, base.Rev)
	}
	ch, err := s.Changes(ctx, base.Rev)
	if err != nil {
		t.Fatal(err)
	}
	if ch.Rev != rev || ch.Full {
		t.Errorf("changes at revision %d (full %v); want %d, not full", ch.Rev, ch.Full, rev)
	}
	if len(ch.Instances) != 1 || ch.Instances[0].ID != "i-1" || len(ch.Devices) != 2 || len(ch.Credentials) != 1 {
		t.Errorf("changed instances %+v devices %d credentials %d; want i-1 with its 2 devices and 1 credential", ch.Instances, len(ch.Devices), len(ch.Credentials))
	}
	if diff := cmp.Diff([]string{"i-2"}, ch.Deleted); diff != "" {
		t.Errorf("deleted (-want +got):\n%s", diff)
	}
	if len(ch.CCNs) != 1 || ch.CCNs[0].ID != "ccn-2" || ch.Meta["generation"] != "3" {
		t.Errorf("changed CCNs %+v meta %v", ch.CCNs, ch.Meta)
	}
	none, err := s.Changes(ctx, rev)
	if err != nil || len(none.Instances)+len(none.CCNs)+len(none.Meta)+len(none.Deleted) != 0 {
		t.Errorf("changes since the current revision: %+v, %v; want none", none, err)
	}
}

func testNonces(t *testing.T, s testStore, again func() testStore, _ bool) {
	ctx := context.Background()
	now := at
	if err := s.PutNonce(ctx, "n1", "SN1", now.Add(time.Minute), now); err != nil {
		t.Fatal(err)
	}
	if ok, err := s.TakeNonce(ctx, "n1", "SN2", now); ok || err != nil {
		t.Errorf("nonce taken for another SN: %v, %v", ok, err)
	}
	if ok, _ := s.TakeNonce(ctx, "n1", "SN1", now); ok {
		t.Error("a nonce was taken after a wrong attempt consumed it")
	}
	if err := s.PutNonce(ctx, "n2", "SN1", now.Add(time.Minute), now); err != nil {
		t.Fatal(err)
	}
	if ok, _ := s.TakeNonce(ctx, "n2", "SN1", now.Add(2*time.Minute)); ok {
		t.Error("an expired nonce was taken")
	}
	// Many takers on several handles at once: exactly one wins.
	if err := s.PutNonce(ctx, "n3", "SN1", now.Add(time.Minute), now); err != nil {
		t.Fatal(err)
	}
	handles := []testStore{s, again(), again()}
	var wins atomic.Int32
	var wg sync.WaitGroup
	for i := range 12 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ok, err := handles[i%len(handles)].TakeNonce(ctx, "n3", "SN1", now)
			if err != nil {
				t.Errorf("take: %v", err)
			}
			if ok {
				wins.Add(1)
			}
		}()
	}
	wg.Wait()
	if w := wins.Load(); w != 1 {
		t.Errorf("%d takers won one nonce; want exactly 1", w)
	}
}

func testAudit(t *testing.T, s testStore, _ func() testStore, _ bool) {
	ctx := context.Background()
	for i, a := range []string{"instance.create", "device.register", "device.revoke"} {
		if err := s.AppendAudit(ctx, AuditEntry{At: at.Add(time.Duration(i)), Who: "admin:uid=0", Action: a, Target: "x", Result: "ok"}); err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.Audit(ctx, 2)
	if err != nil || len(got) != 2 || got[0].Action != "device.register" || got[1].Action != "device.revoke" {
		t.Fatalf("last 2 audit entries: %+v, %v", got, err)
	}
}

func testInitMeta(t *testing.T, s testStore, again func() testStore, _ bool) {
	ctx := context.Background()
	got, err := s.InitMeta(ctx, "ca", "first")
	if err != nil || got != "first" {
		t.Fatalf("InitMeta on an empty store: %q, %v; want first", got, err)
	}
	got, err = again().InitMeta(ctx, "ca", "second")
	if err != nil || got != "first" {
		t.Errorf("InitMeta when set: %q, %v; want the first value", got, err)
	}
}

func testWatch(t *testing.T, s testStore, again func() testStore, pg bool) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	events := make(chan bool, 100)
	done := make(chan struct{})
	go func() { defer close(done); s.Watch(ctx, func(live bool) { events <- live }) }()
	if !pg {
		// One process: Watch says "live" and returns.
		if live := <-events; !live {
			t.Error("SQLite Watch reported not live")
		}
		<-done
		return
	}
	select {
	case live := <-events:
		if !live {
			t.Fatal("first Watch event is not live")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Watch did not start listening within 10 s")
	}
	if err := again().SetMeta(ctx, "k", "v"); err != nil {
		t.Fatal(err)
	}
	select {
	case live := <-events:
		if !live {
			t.Error("change reported as not live")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a change through another handle was not announced within 5 s")
	}
	cancel()
	<-done
}

func testLock(t *testing.T, s testStore, again func() testStore, pg bool) {
	if !pg {
		t.Skip("SQLite has one process: its Lock is the controller's mutex")
	}
	ctx := context.Background()
	o := again()
	unlock, err := s.Lock(ctx)
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan error, 1)
	go func() {
		u, err := o.Lock(ctx)
		if err == nil {
			u()
		}
		got <- err
	}()
	select {
	case err := <-got:
		t.Fatalf("a second handle took the lock while it was held (err %v)", err)
	case <-time.After(300 * time.Millisecond):
	}
	unlock()
	select {
	case err := <-got:
		if err != nil {
			t.Fatalf("second handle after unlock: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the lock was not released")
	}
	// A holder that goes away (its connections closed, as when the
	// process dies) releases the lock.
	h := again()
	if _, err := h.Lock(ctx); err != nil {
		t.Fatal(err)
	}
	h.Close()
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	u, err := s.Lock(cctx)
	if err != nil {
		t.Fatalf("lock after its holder closed: %v", err)
	}
	u()
}

func testVersion(t *testing.T, s testStore, again func() testStore, _ bool) {
	ctx := context.Background()
	v, err := s.Version(ctx)
	if err != nil || v != SchemaVersion() {
		t.Errorf("schema version %d, %v; want %d", v, err, SchemaVersion())
	}
	// Opening again finds nothing to do.
	if v, err := again().Version(ctx); err != nil || v != SchemaVersion() {
		t.Errorf("schema version after reopen %d, %v", v, err)
	}
}

// TestMigratesTheUnversionedSchema opens a database made by a controller
// released before schema versions were recorded (testdata) and checks its
// rows survive and the store works on it.
func TestMigratesTheUnversionedSchema(t *testing.T) {
	for _, v := range []string{"v2", "v3"} {
		t.Run(v, func(t *testing.T) { testMigrates(t, v) })
	}
}

func testMigrates(t *testing.T, v string) {
	ddl, err := os.ReadFile("testdata/sqlite-schema-" + v + ".sql")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), v+".db")
	db, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(string(ddl)); err != nil {
		t.Fatalf("make the old database: %v", err)
	}
	db.Close()
	ctx := context.Background()
	s, err := OpenSQLite(path)
	if err != nil {
		t.Fatalf("open the old database: %v", err)
	}
	defer s.Close()
	if v, _ := s.Version(ctx); v != SchemaVersion() {
		t.Errorf("schema version after migration %d; want %d", v, SchemaVersion())
	}
	snap, err := s.Load(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(snap.Instances) != 1 || len(snap.Devices) != 2 || len(snap.CCNs) != 1 || len(snap.Credentials) != 1 ||
		snap.Meta["generation"] != "12" || snap.Meta["active/i-1"] != "SN2" {
		t.Fatalf("old rows after migration: %+v", snap)
	}
	if d := snap.Devices[0]; d.PublicKey != key(1) || len(d.ProbeAddrs) != 1 || snap.Instances[0].CCN != "ccn-1" || len(snap.Instances[0].Advertised) != 2 {
		t.Errorf("old device or instance changed: %+v %+v", d, snap.Instances[0])
	}
	if gw := snap.Devices[0].LANGateway; (v == "v3") != gw.IsValid() {
		t.Errorf("LAN gateway after migrating %s: %v", v, gw)
	}
	// The migrated database takes changes and reports them by revision.
	d := snap.Devices[1]
	d.PublicKey, d.Status = key(2), StatusRegistered
	if err := s.BindDevice(ctx, d, Credential{Hash: []byte{2}, SN: d.SN, State: CredValid, CreatedAt: at}, snap.Instances[0]); err != nil {
		t.Fatal(err)
	}
	ch, err := s.Changes(ctx, snap.Rev)
	if err != nil || len(ch.Devices) != 2 {
		t.Errorf("changes after migration: %+v, %v", ch, err)
	}
	if got, _ := s.Audit(ctx, 10); len(got) != 1 {
		t.Errorf("audit entries after migration: %+v", got)
	}
}

// TestReplicasMigrateOnce opens several handles on one fresh PostgreSQL
// database at once: one migrates, the others wait and find it done.
func TestReplicasMigrateOnce(t *testing.T) {
	srv := pgtest.Start(t)
	url := srv.NewDB(t)
	var wg sync.WaitGroup
	for range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, err := OpenPostgres(context.Background(), url, PostgresOptions{})
			if err != nil {
				t.Errorf("open while others open: %v", err)
				return
			}
			s.Close()
		}()
	}
	wg.Wait()
}

// testHubs: the hub registry and instances' hub assignments round-trip,
// reach another handle through Changes (removals as DeletedHubs), a key
// or overlay address held by another hub is ErrConflict, and recording
// when a hub was seen takes no revision.
func testHubs(t *testing.T, s testStore, again func() testStore, _ bool) {
	ctx := context.Background()
	in, devs := fixture()
	in.Hubs = []string{"h1", "h2"}
	if err := s.CreateInstance(ctx, in, devs); err != nil {
		t.Fatal(err)
	}
	h1 := Hub{Name: "h1", PublicKey: key(1), Endpoint: netip.MustParseAddrPort("198.18.0.2:4500"), Overlay: netip.MustParseAddr("198.18.127.254"), RegisteredAt: at, LastSeen: at}
	h2 := Hub{Name: "h2", PublicKey: key(2), Endpoint: netip.MustParseAddrPort("198.18.0.3:4500"), Overlay: netip.MustParseAddr("198.18.127.253"), RegisteredAt: at, LastSeen: at}
	for _, h := range []Hub{h1, h2} {
		if err := s.PutHub(ctx, h); err != nil {
			t.Fatal(err)
		}
	}
	base, err := s.Load(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]Hub{h1, h2}, base.Hubs, equateHub); diff != "" {
		t.Errorf("hubs (-want +got):\n%s", diff)
	}
	if len(base.Instances) != 1 || !slices.Equal(base.Instances[0].Hubs, []string{"h1", "h2"}) {
		t.Errorf("instance hubs %+v; want [h1 h2]", base.Instances)
	}
	bad := h2
	bad.Name, bad.Overlay = "h3", netip.MustParseAddr("198.18.127.252")
	if err := s.PutHub(ctx, bad); !errors.Is(err, ErrConflict) {
		t.Errorf("a third hub with h2's key: %v; want ErrConflict", err)
	}
	bad.PublicKey, bad.Overlay = key(3), h1.Overlay
	if err := s.PutHub(ctx, bad); !errors.Is(err, ErrConflict) {
		t.Errorf("a third hub with h1's overlay address: %v; want ErrConflict", err)
	}

	// Another handle re-keys h1, removes h2 and reassigns the instance.
	o := again()
	h1.PublicKey, h1.Endpoint = key(4), netip.MustParseAddrPort("198.18.0.9:4501")
	if err := o.PutHub(ctx, h1); err != nil {
		t.Fatal(err)
	}
	if err := o.DeleteHub(ctx, "h2"); err != nil {
		t.Fatal(err)
	}
	if err := o.DeleteHub(ctx, "h2"); !errors.Is(err, ErrNotFound) {
		t.Errorf("removing h2 twice: %v; want ErrNotFound", err)
	}
	if err := o.SetInstanceHubs(ctx, map[string][]string{"i-1": {"h1"}}); err != nil {
		t.Fatal(err)
	}
	if err := o.SetInstanceHubs(ctx, map[string][]string{"i-nope": {"h1"}}); !errors.Is(err, ErrNotFound) {
		t.Errorf("assigning an unknown instance: %v; want ErrNotFound", err)
	}
	ch, err := s.Changes(ctx, base.Rev)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]Hub{h1}, ch.Hubs, equateHub); diff != "" {
		t.Errorf("changed hubs (-want +got):\n%s", diff)
	}
	if !slices.Equal(ch.DeletedHubs, []string{"h2"}) || len(ch.Deleted) != 0 {
		t.Errorf("deleted hubs %v instances %v; want [h2] and none", ch.DeletedHubs, ch.Deleted)
	}
	if len(ch.Instances) != 1 || !slices.Equal(ch.Instances[0].Hubs, []string{"h1"}) {
		t.Errorf("changed instance hubs %+v; want [h1]", ch.Instances)
	}

	rev, err := s.Revision(ctx)
	if err != nil {
		t.Fatal(err)
	}
	seen := at.Add(time.Hour)
	if err := s.TouchHub(ctx, "h1", seen); err != nil {
		t.Fatal(err)
	}
	if err := s.TouchHub(ctx, "h1", at); err != nil { // older: ignored
		t.Fatal(err)
	}
	if r, _ := s.Revision(ctx); r != rev {
		t.Errorf("revision %d after recording a hub seen; want %d (no change)", r, rev)
	}
	full, err := again().Load(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(full.Hubs) != 1 || !full.Hubs[0].LastSeen.Equal(seen) || full.Hubs[0].PublicKey != key(4) {
		t.Errorf("hubs after reopen: %+v; want h1 re-keyed, last seen %v", full.Hubs, seen)
	}
}

var equateHub = cmpopts.EquateComparable(netip.Addr{}, netip.AddrPort{})
