package controller

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base32"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/openvcpe/vcpe/api"
	"github.com/openvcpe/vcpe/controller/store"
	"github.com/openvcpe/vcpe/internal/atomicfile"
	"golang.org/x/time/rate"
)

// Store is what the controller needs from its database: store.SQLite (one
// process) and store.Postgres (replicas) keep this contract.
type Store interface {
	Load(ctx context.Context) (*store.Snapshot, error)
	// Changes, Revision, Lock and Watch keep replicas' caches current and
	// their decisions serial (see replica.go).
	Changes(ctx context.Context, since uint64) (*store.Snapshot, error)
	Revision(ctx context.Context) (uint64, error)
	Lock(ctx context.Context) (unlock func(), err error)
	Watch(ctx context.Context, changed func(live bool))
	// Shared is true when other controller processes may use the same
	// database.
	Shared() bool
	InitMeta(ctx context.Context, k, v string) (string, error)
	PutNonce(ctx context.Context, nonce, sn string, expires, now time.Time) error
	TakeNonce(ctx context.Context, nonce, sn string, now time.Time) (bool, error)
	SetMeta(ctx context.Context, k, v string) error
	CreateInstance(ctx context.Context, in store.Instance, devs []store.Device) error
	UpdateInstance(ctx context.Context, in store.Instance) error
	UpdateAdvertised(ctx context.Context, in store.Instance, sn string, probe []netip.Addr) error
	DeleteInstance(ctx context.Context, id string) error
	UpdateDevice(ctx context.Context, d store.Device, credState string) error
	BindDevice(ctx context.Context, d store.Device, cred store.Credential, in store.Instance) error
	CreateCCN(ctx context.Context, c store.CCN) error
	// The hub registry and assignments (hub groups).
	PutHub(ctx context.Context, h store.Hub) error
	DeleteHub(ctx context.Context, name string) error
	TouchHub(ctx context.Context, name string, at time.Time) error
	SetInstanceHubs(ctx context.Context, assign map[string][]string) error
	AppendAudit(ctx context.Context, e store.AuditEntry) error
	Audit(ctx context.Context, n int) ([]store.AuditEntry, error)
	Close() error
}

// Files in the state directory besides the TLS identity.
const (
	StoreFile   = "controller.db"
	HubKeyFile  = "hub.key"
	AdminSocket = "admin.sock"
)

// DefaultOverlay is the overlay pool unless Options.Overlay says otherwise.
var DefaultOverlay = netip.MustParsePrefix("198.18.64.0/18")

// Options configure a Server. StateDir and HubEndpoint are required.
type Options struct {
	StateDir      string
	HubEndpoint   netip.AddrPort // the address devices dial for WireGuard
	Overlay       netip.Prefix   // default DefaultOverlay
	CloudPrefixes []netip.Prefix // prefixes behind the hub, learnt by CCN members
	// HubAddrs are the hub host's own addresses where its probe reflector
	// answers; the one inside a cloud-side prefix is that prefix's probe
	// target (api.DeviceConfig.Targets).
	HubAddrs   []netip.Addr
	RouteQuota int // default per-device prefix quota for new instances; default 5
	// LANPools are the prefixes advertisements must lie inside
	// (DefaultLANPools when empty); DenyPrefixes are never accepted.
	LANPools     []netip.Prefix
	DenyPrefixes []netip.Prefix
	// HostNetworks are the hub host's own addresses, connected networks
	// and default gateways (gathered at start by vcpe-hub serve); no
	// advertised prefix may overlap one. ControllerAddr is the device
	// API's address when it is a specific one.
	HostNetworks   []HostNetwork
	ControllerAddr netip.Addr
	// AuditMaxAge and AuditMaxRows bound the audit log: older rows and
	// rows beyond the newest AuditMaxRows are pruned (defaults
	// DefaultAuditMaxAge, DefaultAuditMaxRows).
	AuditMaxAge  time.Duration
	AuditMaxRows int
	// Names are extra DNS names or IP addresses for the server certificate
	// (localhost, 127.0.0.1, ::1 and the hub endpoint's address are always
	// in it).
	Names []string
	// HubName is the name of the hub the controller stands for itself
	// (its hub key, HubEndpoint, the overlay's first address): the hub it
	// runs in the same process with EmbeddedHub, else the default hub
	// devices are told while no hub has registered. Default DefaultHubName.
	HubName string
	// EmbeddedHub says the controller runs a hub dataplane itself
	// (vcpe-hub serve --role all): that hub is a member of the hub group
	// besides the registered ones.
	EmbeddedHub bool
	// Failback is the hub group's setting (api.DeviceConfig.Failback):
	// traffic goes back to a recovered primary hub.
	Failback bool
	// Store is the controller's database; nil opens the SQLite store in
	// StateDir. vcpe-hub serve --database passes a store.Postgres, shared
	// by replicas.
	Store  Store
	Logger *slog.Logger
	Now    func() time.Time // default time.Now
}

// OptionError means an Options field is wrong; the message names the flag
// and the fix.
type OptionError struct{ Err error }

func (e *OptionError) Error() string { return e.Err.Error() }
func (e *OptionError) Unwrap() error { return e.Err }

func optErr(format string, args ...any) error { return &OptionError{Err: fmt.Errorf(format, args...)} }

// Server is the controller. Its methods are safe for concurrent use.
type Server struct {
	opts        Options
	log         *slog.Logger
	now         func() time.Time
	store       Store
	hubKey      api.Key
	hubAddr     netip.Addr
	cert        tls.Certificate
	ca          *x509.Certificate
	fingerprint string

	regAddr *backoff // failed registration requests per source network
	regSN   *backoff // failed registration proofs per SN and source network
	nonces  *nonces
	sampler auditSampler
	advLim  *lru[*rate.Limiter] // route changes per device (under mu)
	appends atomic.Int64        // audit rows since start, for pruning

	reachOnce sync.Once
	reachLim  *reachLimiter // outside-in reach requests per source address

	mu          sync.RWMutex
	gen         uint64
	seq         uint64
	instances   map[string]*store.Instance // by ID
	instByName  map[string]string
	devices     map[string]*store.Device // by SN
	instDevices map[string][]string      // instance ID → SNs by slot
	// activeOverride is the hub arbiter's choice of active device per
	// instance (SetActive).
	activeOverride map[string]string
	ccns           map[string]*store.CCN // by ID
	ccnByName      map[string]string
	members        map[string]map[string]bool // CCN ID → instance IDs
	creds          map[[32]byte]*store.Credential
	validCred      map[string][32]byte // SN → hash of its valid credential
	byPubKey       map[api.Key]string  // WireGuard public key → SN
	overlayUsed    map[netip.Addr]bool
	overlayHint    netip.Addr
	// lastSeen is guarded by seenMu, not mu: recording a poll must not
	// serialise the configuration reads of a thousand long-polls.
	seenMu   sync.Mutex
	lastSeen map[string]time.Time

	hubCreds  map[string][32]byte   // hub name → SHA-256 of its credential (hubapi.go)
	rev       uint64                // store revision of the cache (replica.go)
	credsBySN map[string][][32]byte // credentials loaded from the store, by SN (replica.go)
	live      atomic.Bool           // the store's change announcements arrive
	watch     genWatch              // wakes long-polls on every new generation
	stopWatch context.CancelFunc
	watchDone chan struct{}

	pub publisher

	hubs      map[string]*store.Hub // registered hubs by name (hubgroup.go)
	hubSeen   map[string]time.Time  // when each hub last called (under seenMu)
	hubStored map[string]time.Time  // when each hub's last-seen time was stored (under seenMu)
	groupMu   sync.Mutex
	group     *hubGroup // cache of the hub group (under groupMu)
	base      *hubBase  // cache of the hub configuration (under groupMu)
}

// New opens (or, on first start, creates) the controller's state in
// opts.StateDir: directory 0700, store, CA and server certificate, hub
// WireGuard key. It does not listen; see Serve.
func New(ctx context.Context, opts Options) (*Server, error) {
	if opts.StateDir == "" {
		return nil, optErr("controller state directory is not set: pass --state DIR")
	}
	if !opts.HubEndpoint.IsValid() {
		return nil, optErr("hub endpoint is not set: pass --hub-endpoint ADDR:PORT, the address devices dial (for example 198.18.0.1:4500)")
	}
	if !opts.Overlay.IsValid() {
		opts.Overlay = DefaultOverlay
	}
	if !opts.Overlay.Addr().Is4() || opts.Overlay.Bits() > 30 || opts.Overlay.Masked() != opts.Overlay {
		return nil, optErr("overlay %s: want an IPv4 network prefix of /30 or shorter without host bits (for example 198.18.64.0/18)", opts.Overlay)
	}
	for _, c := range opts.CloudPrefixes {
		if !c.IsValid() || c.Masked() != c {
			return nil, optErr("cloud prefix %s: want a network prefix without host bits (for example %s)", c, c.Masked())
		}
		if c.Overlaps(opts.Overlay) {
			return nil, optErr("cloud prefix %s overlaps the overlay %s: choose prefixes outside the overlay", c, opts.Overlay)
		}
	}
	if err := validatePolicy(opts); err != nil {
		return nil, err
	}
	if opts.RouteQuota == 0 {
		opts.RouteQuota = DefaultRouteQuota
	}
	if opts.AuditMaxAge == 0 {
		opts.AuditMaxAge = DefaultAuditMaxAge
	}
	if opts.AuditMaxRows == 0 {
		opts.AuditMaxRows = DefaultAuditMaxRows
	}
	if opts.AuditMaxAge < time.Hour || opts.AuditMaxRows < 100 {
		return nil, optErr("audit retention %s / %d rows: keep at least an hour and 100 rows (--audit-max-age, --audit-max-rows)", opts.AuditMaxAge, opts.AuditMaxRows)
	}
	if opts.RouteQuota < 1 || opts.RouteQuota > MaxRouteQuota {
		return nil, optErr("route quota %d: want 1 to %d prefixes per device", opts.RouteQuota, MaxRouteQuota)
	}
	if opts.HubName == "" {
		opts.HubName = DefaultHubName
	}
	if e := checkName("hub_name", opts.HubName); e != nil {
		return nil, optErr("--hub-name %q: %s", opts.HubName, e.Fix)
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if err := os.MkdirAll(opts.StateDir, 0o700); err != nil {
		return nil, fmt.Errorf("create controller state directory: %w", err)
	}
	if err := os.Chmod(opts.StateDir, 0o700); err != nil {
		return nil, fmt.Errorf("create controller state directory: %w", err)
	}
	s := &Server{
		opts:        opts,
		log:         opts.Logger,
		now:         opts.Now,
		hubAddr:     opts.Overlay.Addr().Next(),
		regAddr:     newBackoff(10, time.Second, 5*time.Minute, 15*time.Minute),
		regSN:       newBackoff(5, time.Second, 30*time.Second, 15*time.Minute),
		nonces:      newNonces(NonceTTL, 100_000, 32),
		instances:   map[string]*store.Instance{},
		instByName:  map[string]string{},
		devices:     map[string]*store.Device{},
		instDevices: map[string][]string{},
		ccns:        map[string]*store.CCN{},
		ccnByName:   map[string]string{},
		members:     map[string]map[string]bool{},
		creds:       map[[32]byte]*store.Credential{},
		validCred:   map[string][32]byte{},
		byPubKey:    map[api.Key]string{},
		overlayUsed: map[netip.Addr]bool{},
		lastSeen:    map[string]time.Time{},
	}
	s.store = opts.Store
	if s.store == nil {
		db, err := store.OpenSQLite(filepath.Join(opts.StateDir, StoreFile))
		if err != nil {
			return nil, err
		}
		s.store = db
	}
	var err error
	if s.store.Shared() {
		err = s.shareIdentity(ctx)
	}
	if err == nil {
		s.ca, s.cert, err = s.loadIdentity()
	}
	if err == nil {
		s.fingerprint = Fingerprint(s.ca)
		s.hubKey, err = loadOrCreateHubKey(filepath.Join(opts.StateDir, HubKeyFile))
	}
	if err == nil {
		err = s.load(ctx)
	}
	if err == nil {
		s.watch.init()
		// Instances made before their hubs registered get their stored
		// default now (hub groups).
		err = s.settleAssignments(ctx)
	}
	if err != nil {
		s.store.Close()
		return nil, err
	}
	wctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	s.stopWatch, s.watchDone = cancel, make(chan struct{})
	go func() { defer close(s.watchDone); s.watchStore(wctx) }()
	s.pruneAudit(ctx)
	s.pub.start(s.HubConfig)
	return s, nil
}

func (s *Server) loadIdentity() (*x509.Certificate, tls.Certificate, error) {
	now := s.now()
	ca, caKey, err := loadOrCreateCA(s.opts.StateDir, now)
	if err != nil {
		return nil, tls.Certificate{}, err
	}
	names := []string{"localhost", "127.0.0.1", "::1", s.opts.HubEndpoint.Addr().Unmap().String()}
	if h, err := os.Hostname(); err == nil && h != "" {
		names = append(names, h)
	}
	names = append(names, s.opts.Names...)
	cert, err := loadOrCreateServerCert(s.opts.StateDir, ca, caKey, names, now)
	return ca, cert, err
}

func loadOrCreateHubKey(path string) (api.Key, error) {
	b, err := os.ReadFile(path)
	if err == nil {
		k, err := api.ParseKey(strings.TrimSpace(string(b)))
		if err != nil {
			return api.Key{}, fmt.Errorf("hub key %s is corrupt (%v); restore it from a backup (devices peer with its public half)", path, err)
		}
		return k, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return api.Key{}, fmt.Errorf("read hub key: %w", err)
	}
	k, err := api.GeneratePrivateKey()
	if err != nil {
		return api.Key{}, err
	}
	if err := atomicfile.WriteFile(path, []byte(k.String()+"\n"), 0o600); err != nil {
		return api.Key{}, fmt.Errorf("store hub key: %w", err)
	}
	return k, nil
}

func (s *Server) load(ctx context.Context) error {
	snap, err := s.store.Load(ctx)
	if err != nil {
		return err
	}
	if ov, ok := snap.Meta["overlay"]; ok && ov != s.opts.Overlay.String() {
		return optErr("overlay %s: this controller's state was made with --overlay %s; start it with that overlay (devices keep their addresses)", s.opts.Overlay, ov)
	}
	if err := s.store.SetMeta(ctx, "overlay", s.opts.Overlay.String()); err != nil {
		return err
	}
	s.mu.Lock()
	snap.Full = true
	s.applyLocked(snap)
	s.mu.Unlock()
	return nil
}

// seen records that device sn called now.
func (s *Server) seen(sn string, now time.Time) {
	s.seenMu.Lock()
	s.lastSeen[sn] = now
	s.seenMu.Unlock()
}

// seenAt returns when device sn last called.
func (s *Server) seenAt(sn string) (time.Time, bool) {
	s.seenMu.Lock()
	defer s.seenMu.Unlock()
	t, ok := s.lastSeen[sn]
	return t, ok
}

// Close stops publishing and closes the store.
func (s *Server) Close() error {
	s.stopWatch()
	<-s.watchDone
	s.pub.stop()
	return s.store.Close()
}

// Fingerprint is the CA's "sha256:<hex>", which devices pin.
func (s *Server) Fingerprint() string { return s.fingerprint }

// HubPublicKey is the public half of the hub's WireGuard key.
func (s *Server) HubPublicKey() api.Key { return s.hubKey.PublicKey() }

// HubPrivateKey is the hub's WireGuard private key, for the hub dataplane
// running in the same process. Never log it.
func (s *Server) HubPrivateKey() api.Key { return s.hubKey }

// TLSConfig is the HTTPS server configuration.
func (s *Server) TLSConfig() *tls.Config {
	return &tls.Config{Certificates: []tls.Certificate{s.cert}, MinVersion: tls.VersionTLS13}
}

// changedLocked records that the desired state changed: a new generation,
// persisted so it only ever grows, and a HubConfig to publish.
func (s *Server) changedLocked(ctx context.Context) {
	s.invalidateHubConfigLocked()
	s.gen++
	if err := s.store.SetMeta(ctx, "generation", strconv.FormatUint(s.gen, 10)); err != nil {
		s.log.Error("store generation", "err", err)
	}
	s.watch.notify()
	s.pub.poke()
}

// audit records an admin action or registration attempt in the log and the
// store. Never pass a key or credential.
func (s *Server) audit(ctx context.Context, who, action, target, result, detail string) {
	// Fields may hold what a client sent: capped and escaped.
	who, action, target, result, detail = capField(who), capField(action), capField(target), capField(result), capField(detail)
	s.log.Info("audit", "who", who, "action", action, "target", target, "result", result, "detail", detail)
	if err := s.store.AppendAudit(context.WithoutCancel(ctx), store.AuditEntry{At: s.now(), Who: who, Action: action, Target: target, Result: result, Detail: detail}); err != nil {
		s.log.Error("audit log", "err", err)
	}
	if every := int64(min(auditPruneEvery, max(1, s.opts.AuditMaxRows/10))); s.appends.Add(1)%every == 0 {
		s.pruneAudit(ctx)
	}
}

var b32 = base32.StdEncoding.WithPadding(base32.NoPadding)

func randomBytes(n int) []byte {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(fmt.Sprintf("crypto/rand: %v", err)) // never fails on Linux
	}
	return b
}

func newID(prefix string) string { return prefix + hex.EncodeToString(randomBytes(5)) }

// newSN returns a serial number like VC3KQ7M2ZB9XW4TD (16 characters).
func newSN() string { return "VC" + b32.EncodeToString(randomBytes(9))[:14] }

// newDeviceKey returns a device key of 160 random bits in base32.
func newDeviceKey() string { return strings.ToLower(b32.EncodeToString(randomBytes(20))) }

func newCredential() (string, [32]byte) {
	c := "vcd_" + strings.TrimRight(b32.EncodeToString(randomBytes(32)), "=")
	return c, sha256.Sum256([]byte(c))
}

// allocOverlayLocked returns a free device address of the overlay pool
// (the first address is the hub's, the last is never used), searching from
// after the last one handed out.
func (s *Server) allocOverlayLocked(taken map[netip.Addr]bool) (netip.Addr, error) {
	first, last := s.hubAddr.Next(), lastAddr(s.opts.Overlay)
	start := s.overlayHint
	if !start.IsValid() || !s.opts.Overlay.Contains(start) || start == last || start.Less(first) {
		start = first
	}
	for a := start; ; {
		if !s.overlayUsed[a] && !taken[a] {
			s.overlayHint = a.Next()
			return a, nil
		}
		if a = a.Next(); a == last {
			a = first
		}
		if a == start {
			return netip.Addr{}, fmt.Errorf("overlay pool %s is full: delete unused instances or start with a larger --overlay", s.opts.Overlay)
		}
	}
}

func lastAddr(p netip.Prefix) netip.Addr {
	b := p.Masked().Addr().As4()
	n := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
	n |= 1<<(32-p.Bits()) - 1
	return netip.AddrFrom4([4]byte{byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n)})
}

// ListenAndServe serves the device API on addr (HTTPS) and the admin API
// on the unix socket in the state directory until ctx ends, then shuts
// both down gracefully.
func (s *Server) ListenAndServe(ctx context.Context, addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w (choose another --listen address)", addr, err)
	}
	admin, err := ListenAdmin(s.opts.StateDir)
	if err != nil {
		ln.Close()
		return err
	}
	return s.Serve(ctx, ln, admin)
}
