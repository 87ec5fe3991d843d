package controller

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"math"
	"net/netip"
	"slices"
	"time"

	"github.com/openvcpe/vcpe/api"
	"github.com/openvcpe/vcpe/controller/store"
)

// NonceTTL is how long a registration challenge stays valid.
const NonceTTL = 60 * time.Second

// unknownSecret stands in for an unknown SN so that the proof is checked
// the same way (and takes the same time) as for a known one.
var unknownSecret = api.DeviceKeySecret("vcpe: no such device")

func errWrongKey() *api.Error {
	return &api.Error{Code: api.CodeUnauthorized, Message: "the SN or the key is wrong",
		Fix: "check --sn and the key issued with it (vcpe-hub instance create or device reset-key)"}
}

func rateLimited(d time.Duration) *api.Error {
	secs := int(math.Ceil(d.Seconds()))
	return &api.Error{Code: api.CodeRateLimited, RetryAfter: secs,
		Message: "too many failed registrations", Fix: fmt.Sprintf("wait %d seconds and try again", secs)}
}

// checkSN applies the devices' own SN rule (api.ValidateSN) to what a
// client sends.
func checkSN(sn string) *api.Error {
	var ie *api.InputError
	if err := api.ValidateSN(sn); errors.As(err, &ie) {
		// The value is not echoed: it may be huge or hold escape codes.
		return &api.Error{Code: api.CodeInvalidInput, Field: "sn",
			Message: fmt.Sprintf("the SN is not a serial number (1 to %d printable ASCII characters without spaces)", api.MaxSNLen),
			Fix:     "pass the SN issued by vcpe-hub instance create"}
	}
	return nil
}

// Challenge issues a single-use registration nonce for sn. The answer does
// not depend on whether sn exists. A source network throttled for its own
// failures is refused before anything else; a malformed SN counts as one.
func (s *Server) Challenge(from netip.Addr, sn string) (api.Challenge, error) {
	now := s.now()
	src := netKey(from)
	if d := s.regAddr.blocked(src, now); d > 0 {
		return api.Challenge{}, rateLimited(d)
	}
	if e := checkSN(sn); e != nil {
		s.regAddr.fail(src, now)
		return api.Challenge{}, e
	}
	nonce := base64.RawURLEncoding.EncodeToString(randomBytes(32))
	s.nonces.add(nonce, sn, src, now)
	// The store holds the nonce too, so the answer may reach any replica.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.store.PutNonce(ctx, nonce, sn, now.Add(NonceTTL), now); err != nil {
		return api.Challenge{}, internal(err)
	}
	return api.Challenge{Nonce: nonce, ExpiresIn: int(NonceTTL / time.Second), HubPublicKey: s.hubKey.PublicKey()}, nil
}

// Register checks a registration proof and binds the device's WireGuard
// key to its SN. from is the client's address, for throttling and audit.
// Throttling and input checks come before any write; failures are
// recorded sampled per source network, so a flood cannot fill the disk.
func (s *Server) Register(ctx context.Context, from netip.Addr, req api.RegisterRequest) (api.RegisterResponse, error) {
	res, err := s.register(ctx, from, req)
	who := "device@" + from.String()
	var ae *api.Error
	switch {
	case err == nil:
		s.auditResult(ctx, who, "device.register", req.SN, nil)
	case errors.As(err, &ae) && ae.Code == api.CodeRateLimited:
		// Throttled attempts are neither stored nor logged one by one.
	case errors.As(err, &ae) && ae.Field == "sn":
		// The SN itself is malformed: it is not recorded.
		s.auditFailure(ctx, netKey(from), who, "device.register", "(malformed SN)", ae.Code, ae.Message)
	default:
		result := "error"
		if ae != nil {
			result = ae.Code
		}
		s.auditFailure(ctx, netKey(from), who, "device.register", req.SN, result, err.Error())
	}
	return res, err
}

func (s *Server) register(ctx context.Context, from netip.Addr, req api.RegisterRequest) (api.RegisterResponse, error) {
	now := s.now()
	src := netKey(from)
	if err := s.takeChallenge(ctx, src, req.SN, req.Nonce, "registration challenge", now); err != nil {
		return api.RegisterResponse{}, err
	}
	if req.PublicKey.IsZero() {
		return api.RegisterResponse{}, &api.Error{Code: api.CodeInvalidInput, Field: "public_key", Message: "the WireGuard public key is missing"}
	}

	if err := s.knowDevice(ctx, req.SN); err != nil {
		return api.RegisterResponse{}, err
	}
	s.mu.RLock()
	secret := unknownSecret
	d, known := s.devices[req.SN]
	if known {
		secret = d.Secret
	}
	s.mu.RUnlock()
	// The proof is checked first: a valid one is never refused because of
	// failures from elsewhere. A wrong one counts against this source
	// network, for this SN and overall.
	snKey := req.SN + "|" + src
	if !api.CheckProof(secret, req.Nonce, req.SN, req.PublicKey, req.Advertise, req.Proof) || !known {
		d := s.regSN.blocked(snKey, now)
		s.regAddr.fail(src, now)
		s.regSN.fail(snKey, now)
		if d > 0 {
			return api.RegisterResponse{}, rateLimited(d)
		}
		return api.RegisterResponse{}, errWrongKey()
	}
	s.regSN.reset(snKey)

	unlock, err := s.lockWrite(ctx)
	if err != nil {
		return api.RegisterResponse{}, err
	}
	defer unlock()
	d, known = s.devices[req.SN]
	if !known || string(d.Secret) != string(secret) {
		// Deleted or key reset while we checked the proof.
		return api.RegisterResponse{}, errWrongKey()
	}
	if d.Status == store.StatusRevoked {
		return api.RegisterResponse{}, &api.Error{Code: api.CodeRevoked, Message: fmt.Sprintf("device %s is revoked", d.SN),
			Fix: "ask the operator to reset its key (vcpe-hub device reset-key " + d.SN + ") and register with the new key"}
	}
	if !d.PublicKey.IsZero() && d.PublicKey != req.PublicKey {
		return api.RegisterResponse{}, &api.Error{Code: api.CodeSlotTaken, Field: "sn",
			Message: fmt.Sprintf("SN %s is already registered from another WireGuard key", d.SN),
			Fix:     "register from the device that holds it, or reset the key (vcpe-hub device reset-key " + d.SN + ") to move the slot"}
	}
	if o, ok := s.byPubKey[req.PublicKey]; ok && o != d.SN {
		return api.RegisterResponse{}, &api.Error{Code: api.CodeSlotTaken, Field: "public_key",
			Message: fmt.Sprintf("this WireGuard key is already registered as SN %s", o), Fix: "each device needs its own key: use a separate --state-dir per device"}
	}
	in := s.instances[d.InstanceID]
	if e := ValidateAdvertise(req.Advertise, in.RouteQuota); e != nil {
		return api.RegisterResponse{}, e
	}
	probe, e := ValidateProbeAddrs(req.ProbeAddrs, req.Advertise)
	if e != nil {
		return api.RegisterResponse{}, e
	}
	if e := validateLANGateway(req.LANGateway, req.Advertise); e != nil {
		return api.RegisterResponse{}, e
	}
	nin := *in
	if other := s.otherRegisteredLocked(d); other != "" {
		if !samePrefixes(req.Advertise, in.Advertised) {
			return api.RegisterResponse{}, &api.Error{Code: api.CodePrefixConflict, Field: "advertise",
				Message: fmt.Sprintf("instance %s advertises %v (device %s); both devices of an instance advertise the same prefixes", in.Name, in.Advertised, other),
				Fix:     fmt.Sprintf("pass --advertise %s", api.JoinPrefixes(in.Advertised, ","))}
		}
	} else {
		if e := s.conflictsLocked(in.ID, in.CCN, req.Advertise); e != nil {
			return api.RegisterResponse{}, e
		}
		nin.Advertised = slices.Clone(req.Advertise)
	}

	nd := *d
	if d.PublicKey != req.PublicKey || d.RegisteredSeq == 0 {
		s.seq++
		nd.RegisteredSeq = s.seq
		nd.RegisteredAt = now
	}
	nd.PublicKey = req.PublicKey
	nd.Status = store.StatusRegistered
	nd.ProbeAddrs = probe
	nd.LANGateway = req.LANGateway
	cred, hash := newCredential()
	c := store.Credential{Hash: hash[:], SN: d.SN, State: store.CredValid, CreatedAt: now}
	if err := s.store.BindDevice(ctx, nd, c, nin); err != nil {
		if errors.Is(err, store.ErrConflict) {
			return api.RegisterResponse{}, &api.Error{Code: api.CodeSlotTaken, Field: "sn", Message: fmt.Sprintf("SN %s is already registered from another WireGuard key", d.SN)}
		}
		return api.RegisterResponse{}, internal(err)
	}
	*d = nd
	*in = nin
	s.byPubKey[nd.PublicKey] = nd.SN
	if old, ok := s.validCred[d.SN]; ok {
		delete(s.creds, old)
	}
	s.creds[hash] = &c
	s.validCred[d.SN] = hash
	s.seen(d.SN, now)
	s.changedLocked(ctx)
	return api.RegisterResponse{Credential: cred, Config: s.deviceConfigLocked(d)}, nil
}

// validateLANGateway checks a registering device's multi-attach gateway:
// an IPv4 host address with its LAN's length, inside an advertised prefix.
func validateLANGateway(gw netip.Prefix, advertise []netip.Prefix) *api.Error {
	if !gw.IsValid() {
		return nil
	}
	if gw.Addr().Is4() && gw.Bits() >= 8 && gw.Bits() < 32 {
		for _, p := range advertise {
			if p.Contains(gw.Addr()) {
				return nil
			}
		}
	}
	return &api.Error{Code: api.CodeInvalidInput, Field: "lan_gateway",
		Message: fmt.Sprintf("LAN gateway %s is not an IPv4 ADDR/LEN inside the advertised prefixes", gw),
		Fix:     "pass --lan-gateway with an address of the LAN, e.g. 198.19.1.254/24"}
}

// otherRegisteredLocked returns the SN of another registered device of
// d's instance, or "".
func (s *Server) otherRegisteredLocked(d *store.Device) string {
	for _, sn := range s.instDevices[d.InstanceID] {
		if o := s.devices[sn]; sn != d.SN && o.Status == store.StatusRegistered {
			return sn
		}
	}
	return ""
}

// deviceConfigLocked is what device d is told.
func (s *Server) deviceConfigLocked(d *store.Device) api.DeviceConfig {
	in := s.instances[d.InstanceID]
	role := api.RoleStandby
	if s.activeLocked(in.ID) == d.SN {
		role = api.RoleActive
	}
	cfg := api.DeviceConfig{
		Generation: s.gen, SN: d.SN, InstanceID: in.ID, InstanceName: in.Name, CCN: in.CCN,
		OverlayAddr:    netip.PrefixFrom(d.Overlay, s.opts.Overlay.Bits()),
		HubOverlayAddr: s.hubAddr, HubPublicKey: s.hubKey.PublicKey(), HubEndpoint: s.opts.HubEndpoint,
		Routes: []netip.Prefix{}, Advertised: nonNil(slices.Clone(in.Advertised)), Role: role,
		PersistentKeepalive: 25, Slots: in.Slots,
	}
	if g := s.groupLocked(); len(g.hubs) > 0 {
		for _, name := range g.assign[in.ID] {
			if h, ok := g.info(name); ok {
				cfg.Hubs = append(cfg.Hubs, h)
			}
		}
		if len(cfg.Hubs) > 0 {
			cfg.HubOverlayAddr, cfg.HubPublicKey, cfg.HubEndpoint = cfg.Hubs[0].OverlayAddr, cfg.Hubs[0].PublicKey, cfg.Hubs[0].Endpoint
			cfg.Failback = s.opts.Failback
		}
	}
	active := s.activeLocked(in.ID)
	for _, sn := range s.instDevices[in.ID] {
		if o := s.devices[sn]; sn != d.SN && o.Status == store.StatusRegistered {
			cfg.Peers = append(cfg.Peers, api.InstancePeer{SN: sn, Active: sn == active, LANGateway: o.LANGateway})
		}
	}
	if in.CCN != "" {
		for other := range s.members[in.CCN] {
			if other != in.ID && s.activeLocked(other) != "" {
				cfg.Routes = append(cfg.Routes, s.instances[other].Advertised...)
			}
		}
		cfg.Routes = append(cfg.Routes, s.opts.CloudPrefixes...)
		slices.SortFunc(cfg.Routes, comparePrefix)
		cfg.Targets = s.targetsLocked(in.CCN, in.ID, cfg.Routes)
	}
	return cfg
}

// authLocked finds the device of a bearer credential.
func (s *Server) authLocked(credential string) (*store.Device, *api.Error) {
	c, ok := s.creds[sha256.Sum256([]byte(credential))]
	if !ok || credential == "" {
		return nil, &api.Error{Code: api.CodeUnauthorized, Message: "the device credential is not valid", Fix: "register the device again (vcpe register)"}
	}
	switch c.State {
	case store.CredRevoked:
		return nil, &api.Error{Code: api.CodeRevoked, Message: fmt.Sprintf("device %s is revoked", c.SN), Fix: "ask the operator; a revoked device needs a key reset and a new registration"}
	case store.CredKeyReset:
		return nil, &api.Error{Code: api.CodeKeyReset, Message: fmt.Sprintf("the key of device %s was reset", c.SN), Fix: "register again with the new key (vcpe register)"}
	case store.CredReleased:
		return nil, &api.Error{Code: api.CodeReleased, Message: fmt.Sprintf("device %s gave its registration back", c.SN), Fix: "register again (vcpe install or vcpe register)"}
	}
	return s.devices[c.SN], nil
}

// Release gives a device's slot back at the device's own request (vcpe
// uninstall, or the rollback of a failed install): its registration,
// WireGuard key binding and credential are dropped, it leaves the hub's
// peers, and the same SN and key can register again, from any WireGuard
// key. Releasing is not revoking: nothing stops the next registration.
func (s *Server) Release(ctx context.Context, from netip.Addr, credential string) error {
	unlock, err := s.lockWrite(ctx)
	if err != nil {
		return err
	}
	d, e := s.authLocked(credential)
	if e != nil {
		unlock()
		return e
	}
	sn := d.SN
	err = s.releaseLocked(ctx, d)
	unlock()
	s.auditResult(ctx, "device@"+from.String(), "device.release", sn, err)
	return err
}

// ReleaseByKey gives a device's slot back when the request proves it holds
// the WireGuard private key the SN is bound to (api.KeyProof over a nonce
// of Challenge). It needs no credential, so a device whose registration
// answer was lost, or whose state file is gone, can still undo its own
// registration. When the SN is not bound to that key there is nothing to
// undo and the answer says so (Released false), for an unknown SN too.
func (s *Server) ReleaseByKey(ctx context.Context, from netip.Addr, req api.ReleaseRequest) (api.ReleaseResponse, error) {
	now := s.now()
	addrKey := netKey(from)
	if err := s.takeChallenge(ctx, addrKey, req.SN, req.Nonce, "challenge", now); err != nil {
		return api.ReleaseResponse{}, err
	}
	if req.PublicKey.IsZero() || !api.CheckKeyProof(s.hubKey, req.PublicKey, req.Nonce, req.SN, req.Proof) {
		s.regAddr.fail(addrKey, now)
		return api.ReleaseResponse{}, &api.Error{Code: api.CodeUnauthorized, Message: "the WireGuard key proof is wrong",
			Fix: "release from the device that holds the WireGuard key the SN is bound to"}
	}
	unlock, err := s.lockWrite(ctx)
	if err != nil {
		return api.ReleaseResponse{}, err
	}
	d, ok := s.devices[req.SN]
	if !ok || d.Status != store.StatusRegistered || d.PublicKey != req.PublicKey {
		unlock()
		return api.ReleaseResponse{Released: false}, nil
	}
	err = s.releaseLocked(ctx, d)
	unlock()
	s.auditResult(ctx, "device@"+from.String(), "device.release", req.SN, err)
	if err != nil {
		return api.ReleaseResponse{}, err
	}
	return api.ReleaseResponse{Released: true}, nil
}

// releaseLocked unbinds d: its WireGuard key, its credentials, its place
// among the hub's peers.
func (s *Server) releaseLocked(ctx context.Context, d *store.Device) error {
	nd := *d
	nd.PublicKey = api.Key{}
	nd.Status = store.StatusUnregistered
	nd.RegisteredSeq = 0
	nd.RegisteredAt = time.Time{}
	nd.ProbeAddrs = nil
	nd.LANGateway = netip.Prefix{}
	if err := s.store.UpdateDevice(ctx, nd, store.CredReleased); err != nil {
		return internal(err)
	}
	delete(s.byPubKey, d.PublicKey)
	*d = nd
	s.dropCredsLocked(nd.SN, store.CredReleased)
	s.changedLocked(ctx)
	return nil
}

// DeviceConfig returns the configuration of the device holding credential
// and records it as seen.
func (s *Server) DeviceConfig(credential string) (api.DeviceConfig, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.freshen(ctx); err != nil {
		return api.DeviceConfig{}, err
	}
	s.mu.RLock()
	d, e := s.authLocked(credential)
	if e != nil && e.Code == api.CodeUnauthorized && s.store.Shared() {
		// Perhaps registered through another replica a moment ago.
		s.mu.RUnlock()
		s.mu.Lock()
		err := s.catchUpLocked(ctx)
		s.mu.Unlock()
		if err != nil {
			return api.DeviceConfig{}, internal(err)
		}
		s.mu.RLock()
		d, e = s.authLocked(credential)
	}
	defer s.mu.RUnlock()
	if e != nil {
		return api.DeviceConfig{}, e
	}
	s.seen(d.SN, s.now())
	return s.deviceConfigLocked(d), nil
}

// Advertise replaces the prefixes the device's instance advertises and the
// device's probe addresses inside them.
func (s *Server) Advertise(ctx context.Context, credential string, ps []netip.Prefix, probe []netip.Addr) (api.DeviceConfig, error) {
	unlock, err := s.lockWrite(ctx)
	if err != nil {
		return api.DeviceConfig{}, err
	}
	defer unlock()
	d, e := s.authLocked(credential)
	if e != nil {
		return api.DeviceConfig{}, e
	}
	s.seen(d.SN, s.now())
	in := s.instances[d.InstanceID]
	sameRoutes := samePrefixes(ps, in.Advertised)
	if sameRoutes {
		if p, e := ValidateProbeAddrs(probe, ps); e == nil && slices.Equal(p, d.ProbeAddrs) {
			return s.deviceConfigLocked(d), nil
		}
	}
	// A device may change its routes a few times in a burst, then about
	// once a second: each change is a store write, an audit row and a new
	// hub configuration.
	if !s.advertiseAllowedLocked(d.SN) {
		return api.DeviceConfig{}, &api.Error{Code: api.CodeRateLimited, RetryAfter: 1,
			Message: "routes changed too often", Fix: "send route changes at most once a second"}
	}
	err = func() error {
		if e := ValidateAdvertise(ps, in.RouteQuota); e != nil {
			return e
		}
		if !sameRoutes {
			if e := s.conflictsLocked(in.ID, in.CCN, ps); e != nil {
				return e
			}
		}
		p, e := ValidateProbeAddrs(probe, ps)
		if e != nil {
			return e
		}
		nin := *in
		nin.Advertised = slices.Clone(ps)
		if err := s.store.UpdateAdvertised(ctx, nin, d.SN, p); err != nil {
			return internal(err)
		}
		*in = nin
		d.ProbeAddrs = p
		return nil
	}()
	if err != nil {
		var ae *api.Error
		result := "error"
		if errors.As(err, &ae) {
			result = ae.Code
		}
		s.auditFailure(ctx, "sn:"+d.SN, "device:"+d.SN, "device.advertise", in.Name, result, err.Error())
		return api.DeviceConfig{}, err
	}
	s.auditResult(ctx, "device:"+d.SN, "device.advertise", in.Name, nil)
	s.changedLocked(ctx)
	return s.deviceConfigLocked(d), nil
}

// takeChallenge is what registration and release by key proof check first:
// the source network is not throttled, the SN follows the rule, and the
// challenge (what names it in the refusal) was issued for sn and not used
// yet, on any replica. Failures count against the source network.
func (s *Server) takeChallenge(ctx context.Context, src, sn, nonce, what string, now time.Time) error {
	if d := s.regAddr.blocked(src, now); d > 0 {
		return rateLimited(d)
	}
	if e := checkSN(sn); e != nil {
		s.regAddr.fail(src, now)
		return e
	}
	s.nonces.take(nonce, sn, now) // frees this replica's entry
	taken, err := s.store.TakeNonce(ctx, nonce, sn, now)
	if err != nil {
		return internal(err)
	}
	if !taken {
		s.regAddr.fail(src, now)
		return &api.Error{Code: api.CodeUnauthorized,
			Message: "the " + what + " is unknown, expired or already used", Fix: "request a new challenge and answer it within 60 seconds"}
	}
	return nil
}
