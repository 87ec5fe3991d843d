package controller

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/openvcpe/vcpe/api"
	"github.com/openvcpe/vcpe/controller/store"
)

// InstanceInfo describes an instance for the admin commands.
type InstanceInfo struct {
	ID         string         `json:"id"`
	Name       string         `json:"name"`
	Slots      int            `json:"slots"`
	RouteQuota int            `json:"route_quota"`
	CCN        string         `json:"ccn,omitempty"` // name
	CCNID      string         `json:"ccn_id,omitempty"`
	Advertised []netip.Prefix `json:"advertised"`
	Active     string         `json:"active,omitempty"` // SN of the active device
	// Hubs are the instance's hubs, primary first (hub groups; empty
	// while no hub has registered).
	Hubs      []string     `json:"hubs,omitempty"`
	Devices   []DeviceInfo `json:"devices"`
	CreatedAt time.Time    `json:"created_at"`
}

// DeviceInfo describes a device slot. It never holds the key.
type DeviceInfo struct {
	SN           string     `json:"sn"`
	InstanceID   string     `json:"instance_id"`
	InstanceName string     `json:"instance_name"`
	Slot         int        `json:"slot"`
	Status       string     `json:"status"`
	Role         string     `json:"role,omitempty"`
	OverlayAddr  netip.Addr `json:"overlay_addr"`
	PublicKey    *api.Key   `json:"public_key,omitempty"`
	RegisteredAt *time.Time `json:"registered_at,omitempty"`
	LastSeen     *time.Time `json:"last_seen,omitempty"`
}

// IssuedDevice is an SN with its key, shown once.
type IssuedDevice struct {
	SN  string `json:"sn"`
	Key string `json:"key"`
}

// CreatedInstance is the answer to instance create.
type CreatedInstance struct {
	Instance InstanceInfo   `json:"instance"`
	Devices  []IssuedDevice `json:"devices"`
}

// CCNInfo describes a Cloud Connect Network.
type CCNInfo struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	Instances []string  `json:"instances"` // names
	CreatedAt time.Time `json:"created_at"`
}

// RouteEntry is what one instance advertises and who learns it.
type RouteEntry struct {
	Instance   string         `json:"instance"`
	InstanceID string         `json:"instance_id"`
	CCN        string         `json:"ccn,omitempty"`
	Active     string         `json:"active,omitempty"` // SN; empty: nothing is reachable
	Prefixes   []netip.Prefix `json:"prefixes"`
	LearnedBy  []string       `json:"learned_by"` // instance names
}

// RoutesReport is the answer to routes list.
type RoutesReport struct {
	Cloud          []netip.Prefix `json:"cloud"`
	CloudLearnedBy []string       `json:"cloud_learned_by"`
	Instances      []RouteEntry   `json:"instances"`
}

// CreateInstanceRequest is the body of instance create.
type CreateInstanceRequest struct {
	Name       string `json:"name"`
	Slots      int    `json:"slots"`
	RouteQuota int    `json:"route_quota"`
}

var nameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$`)

func invalid(field, format string, args ...any) *api.Error {
	return &api.Error{Code: api.CodeInvalidInput, Field: field, Message: fmt.Sprintf(format, args...)}
}

func notFound(what, ref string) *api.Error {
	return &api.Error{Code: api.CodeNotFound, Message: fmt.Sprintf("no %s %q", what, ref), Fix: "list them with vcpe-hub " + what + " list"}
}

// internal wraps a failure below the API. A storage failure (full,
// read-only, locked) is CodeUnavailable with its cause and fix: the request
// can be retried, it was not refused.
func internal(err error) *api.Error {
	if cause, fix, ok := store.Unavailable(err); ok {
		return &api.Error{Code: api.CodeUnavailable, Message: cause, Fix: fix, RetryAfter: storeRetryAfter}
	}
	return &api.Error{Code: api.CodeInternal, Message: err.Error()}
}

// storeRetryAfter is the Retry-After of a storage failure, in seconds.
const storeRetryAfter = 30

func checkName(field, name string) *api.Error {
	if !nameRE.MatchString(name) {
		e := invalid(field, "name %q is not allowed", name)
		e.Fix = "use 1 to 63 letters, digits, '.', '_' or '-', starting with a letter or digit"
		return e
	}
	return nil
}

// CreateInstance makes an instance with one SN and key per slot. The keys
// are in the answer only.
func (s *Server) CreateInstance(ctx context.Context, who string, req CreateInstanceRequest) (*CreatedInstance, error) {
	res, err := s.createInstance(ctx, req)
	s.auditResult(ctx, who, "instance.create", req.Name, err)
	return res, err
}

func (s *Server) createInstance(ctx context.Context, req CreateInstanceRequest) (*CreatedInstance, error) {
	if e := checkName("name", req.Name); e != nil {
		return nil, e
	}
	if strings.HasPrefix(req.Name, "i-") || strings.HasPrefix(req.Name, "ccn-") {
		return nil, &api.Error{Code: api.CodeInvalidInput, Field: "name", Message: fmt.Sprintf("name %q starts like an ID", req.Name), Fix: "choose a name that does not start with i- or ccn-"}
	}
	if req.Slots == 0 {
		req.Slots = 2
	}
	if req.Slots < 1 || req.Slots > 16 {
		return nil, &api.Error{Code: api.CodeInvalidInput, Field: "slots", Message: fmt.Sprintf("%d slots", req.Slots), Fix: "use --slots from 1 to 16"}
	}
	if req.RouteQuota == 0 {
		req.RouteQuota = s.opts.RouteQuota
	}
	if req.RouteQuota < 1 || req.RouteQuota > MaxRouteQuota {
		return nil, &api.Error{Code: api.CodeInvalidInput, Field: "route_quota", Message: fmt.Sprintf("route quota %d", req.RouteQuota), Fix: fmt.Sprintf("use --route-quota from 1 to %d", MaxRouteQuota)}
	}
	unlock, err := s.lockWrite(ctx)
	if err != nil {
		return nil, err
	}
	defer unlock()
	if _, ok := s.instByName[req.Name]; ok {
		return nil, &api.Error{Code: api.CodeInvalidInput, Field: "name", Message: fmt.Sprintf("an instance named %q exists", req.Name), Fix: "choose another name"}
	}
	now := s.now()
	// Its hubs are chosen now and stored with it, so they do not move
	// when hubs join.
	in := store.Instance{ID: newID("i-"), Name: req.Name, Slots: req.Slots, RouteQuota: req.RouteQuota, CreatedAt: now,
		Hubs: s.newInstanceHubsLocked()}
	res := &CreatedInstance{}
	var devs []store.Device
	taken := map[netip.Addr]bool{}
	for i := range req.Slots {
		addr, err := s.allocOverlayLocked(taken)
		if err != nil {
			return nil, &api.Error{Code: api.CodeQuota, Message: err.Error()}
		}
		taken[addr] = true
		key := newDeviceKey()
		d := store.Device{SN: newSN(), InstanceID: in.ID, Slot: i, Secret: api.DeviceKeySecret(key),
			Overlay: addr, Status: store.StatusUnregistered, CreatedAt: now}
		devs = append(devs, d)
		res.Devices = append(res.Devices, IssuedDevice{SN: d.SN, Key: key})
	}
	if err := s.store.CreateInstance(ctx, in, devs); err != nil {
		return nil, internal(err)
	}
	s.instances[in.ID] = &in
	s.instByName[in.Name] = in.ID
	for i := range devs {
		d := devs[i]
		s.devices[d.SN] = &d
		s.instDevices[in.ID] = append(s.instDevices[in.ID], d.SN)
		s.overlayUsed[d.Overlay] = true
	}
	s.noteInstanceLocked(in.ID, in.Hubs)
	s.changedLocked(ctx)
	res.Instance = s.instanceInfoLocked(s.instances[in.ID])
	return res, nil
}

func (s *Server) instanceRefLocked(ref string) (*store.Instance, *api.Error) {
	if in, ok := s.instances[ref]; ok {
		return in, nil
	}
	if id, ok := s.instByName[ref]; ok {
		return s.instances[id], nil
	}
	return nil, notFound("instance", ref)
}

func (s *Server) ccnRefLocked(ref string) (*store.CCN, *api.Error) {
	if c, ok := s.ccns[ref]; ok {
		return c, nil
	}
	if id, ok := s.ccnByName[ref]; ok {
		return s.ccns[id], nil
	}
	return nil, notFound("ccn", ref)
}

func (s *Server) instanceInfoLocked(in *store.Instance) InstanceInfo {
	info := InstanceInfo{ID: in.ID, Name: in.Name, Slots: in.Slots, RouteQuota: in.RouteQuota, CCNID: in.CCN,
		Advertised: nonNil(in.Advertised), Active: s.activeLocked(in.ID), CreatedAt: in.CreatedAt, Devices: []DeviceInfo{},
		Hubs: s.groupLocked().assign[in.ID]}
	if c := s.ccns[in.CCN]; c != nil {
		info.CCN = c.Name
	}
	for _, sn := range s.instDevices[in.ID] {
		info.Devices = append(info.Devices, s.deviceInfoLocked(s.devices[sn], info.Active))
	}
	return info
}

func (s *Server) deviceInfoLocked(d *store.Device, active string) DeviceInfo {
	in := s.instances[d.InstanceID]
	info := DeviceInfo{SN: d.SN, InstanceID: d.InstanceID, InstanceName: in.Name, Slot: d.Slot, Status: d.Status, OverlayAddr: d.Overlay}
	if d.Status == store.StatusRegistered {
		info.Role = api.RoleStandby
		if d.SN == active {
			info.Role = api.RoleActive
		}
	}
	if !d.PublicKey.IsZero() {
		k := d.PublicKey
		info.PublicKey = &k
	}
	if !d.RegisteredAt.IsZero() {
		t := d.RegisteredAt
		info.RegisteredAt = &t
	}
	if t, ok := s.seenAt(d.SN); ok {
		info.LastSeen = &t
	}
	return info
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// ListInstances returns every instance, by name.
func (s *Server) ListInstances() []InstanceInfo {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := []InstanceInfo{}
	for _, in := range s.instances {
		out = append(out, s.instanceInfoLocked(in))
	}
	slices.SortFunc(out, func(a, b InstanceInfo) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// ShowInstance returns one instance by name or ID.
func (s *Server) ShowInstance(ref string) (InstanceInfo, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	in, e := s.instanceRefLocked(ref)
	if e != nil {
		return InstanceInfo{}, e
	}
	return s.instanceInfoLocked(in), nil
}

// DeleteInstance removes an instance, its devices and their credentials.
func (s *Server) DeleteInstance(ctx context.Context, who, ref string) error {
	err := s.deleteInstance(ctx, ref)
	s.auditResult(ctx, who, "instance.delete", ref, err)
	return err
}

func (s *Server) deleteInstance(ctx context.Context, ref string) error {
	unlock, err := s.lockWrite(ctx)
	if err != nil {
		return err
	}
	defer unlock()
	in, e := s.instanceRefLocked(ref)
	if e != nil {
		return e
	}
	if err := s.store.DeleteInstance(ctx, in.ID); err != nil {
		return internal(err)
	}
	for _, sn := range s.instDevices[in.ID] {
		d := s.devices[sn]
		delete(s.overlayUsed, d.Overlay)
		delete(s.byPubKey, d.PublicKey)
		delete(s.devices, sn)
		s.seenMu.Lock()
		delete(s.lastSeen, sn)
		s.seenMu.Unlock()
		// Until restart its credential answers "revoked" (the store has
		// dropped it), so a running device learns why it lost access.
		s.dropCredsLocked(sn, store.CredRevoked)
	}
	delete(s.instDevices, in.ID)
	delete(s.instances, in.ID)
	delete(s.instByName, in.Name)
	if in.CCN != "" {
		delete(s.members[in.CCN], in.ID)
	}
	s.invalidateGroupLocked()
	s.changedLocked(ctx)
	return nil
}

// dropCredsLocked forgets sn's valid credentials (state "") or marks them
// with state.
func (s *Server) dropCredsLocked(sn, state string) {
	delete(s.validCred, sn)
	for h, c := range s.creds {
		if c.SN != sn {
			continue
		}
		switch {
		case state == "":
			delete(s.creds, h)
		case c.State == store.CredValid:
			c.State = state
		default:
			// An earlier ended credential: the store keeps only the latest.
			delete(s.creds, h)
		}
	}
}

// ListDevices returns every device slot, by instance then slot.
func (s *Server) ListDevices() []DeviceInfo {
	out := []DeviceInfo{}
	for _, in := range s.ListInstances() {
		out = append(out, in.Devices...)
	}
	return out
}

// ResetKey gives the device a new key. The old key and the device's
// credential stop working at once; the device must register again.
func (s *Server) ResetKey(ctx context.Context, who, sn string) (*IssuedDevice, error) {
	res, err := s.resetKey(ctx, sn)
	s.auditResult(ctx, who, "device.reset-key", sn, err)
	return res, err
}

func (s *Server) resetKey(ctx context.Context, sn string) (*IssuedDevice, error) {
	unlock, err := s.lockWrite(ctx)
	if err != nil {
		return nil, err
	}
	defer unlock()
	d, ok := s.devices[sn]
	if !ok {
		return nil, notFound("device", sn)
	}
	key := newDeviceKey()
	nd := *d
	nd.Secret = api.DeviceKeySecret(key)
	nd.PublicKey = api.Key{}
	nd.Status = store.StatusUnregistered
	nd.RegisteredSeq = 0
	nd.RegisteredAt = time.Time{}
	if err := s.store.UpdateDevice(ctx, nd, store.CredKeyReset); err != nil {
		return nil, internal(err)
	}
	delete(s.byPubKey, d.PublicKey)
	*d = nd
	s.dropCredsLocked(sn, store.CredKeyReset)
	s.regSN.reset(sn)
	s.changedLocked(ctx)
	return &IssuedDevice{SN: sn, Key: key}, nil
}

// Revoke stops a device: its credential answers CodeRevoked, it leaves the
// hub's peers, and it cannot register until its key is reset.
func (s *Server) Revoke(ctx context.Context, who, sn string) error {
	err := s.revoke(ctx, sn)
	s.auditResult(ctx, who, "device.revoke", sn, err)
	return err
}

func (s *Server) revoke(ctx context.Context, sn string) error {
	unlock, err := s.lockWrite(ctx)
	if err != nil {
		return err
	}
	defer unlock()
	d, ok := s.devices[sn]
	if !ok {
		return notFound("device", sn)
	}
	nd := *d
	nd.Status = store.StatusRevoked
	if err := s.store.UpdateDevice(ctx, nd, store.CredRevoked); err != nil {
		return internal(err)
	}
	*d = nd
	s.dropCredsLocked(sn, store.CredRevoked)
	s.changedLocked(ctx)
	return nil
}

// CreateCCN makes a Cloud Connect Network.
func (s *Server) CreateCCN(ctx context.Context, who, name string) (CCNInfo, error) {
	res, err := s.createCCN(ctx, name)
	s.auditResult(ctx, who, "ccn.create", name, err)
	return res, err
}

func (s *Server) createCCN(ctx context.Context, name string) (CCNInfo, error) {
	if e := checkName("name", name); e != nil {
		return CCNInfo{}, e
	}
	if strings.HasPrefix(name, "i-") || strings.HasPrefix(name, "ccn-") {
		return CCNInfo{}, &api.Error{Code: api.CodeInvalidInput, Field: "name", Message: fmt.Sprintf("name %q starts like an ID", name), Fix: "choose a name that does not start with i- or ccn-"}
	}
	unlock, err := s.lockWrite(ctx)
	if err != nil {
		return CCNInfo{}, err
	}
	defer unlock()
	if _, ok := s.ccnByName[name]; ok {
		return CCNInfo{}, &api.Error{Code: api.CodeInvalidInput, Field: "name", Message: fmt.Sprintf("a CCN named %q exists", name), Fix: "choose another name"}
	}
	c := store.CCN{ID: newID("ccn-"), Name: name, CreatedAt: s.now()}
	if err := s.store.CreateCCN(ctx, c); err != nil {
		return CCNInfo{}, internal(err)
	}
	s.ccns[c.ID] = &c
	s.ccnByName[c.Name] = c.ID
	s.members[c.ID] = map[string]bool{}
	return s.ccnInfoLocked(&c), nil
}

func (s *Server) ccnInfoLocked(c *store.CCN) CCNInfo {
	info := CCNInfo{ID: c.ID, Name: c.Name, CreatedAt: c.CreatedAt, Instances: []string{}}
	for id := range s.members[c.ID] {
		info.Instances = append(info.Instances, s.instances[id].Name)
	}
	slices.Sort(info.Instances)
	return info
}

// ListCCNs returns every CCN, by name.
func (s *Server) ListCCNs() []CCNInfo {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := []CCNInfo{}
	for _, c := range s.ccns {
		out = append(out, s.ccnInfoLocked(c))
	}
	slices.SortFunc(out, func(a, b CCNInfo) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// Attach puts an instance into a CCN. It is refused when the instance is in
// another CCN or its prefixes overlap a member's.
func (s *Server) Attach(ctx context.Context, who, ccnRef, instRef string) (CCNInfo, error) {
	res, err := s.attach(ctx, ccnRef, instRef, true)
	s.auditResult(ctx, who, "ccn.attach", ccnRef+" "+instRef, err)
	return res, err
}

// Detach takes an instance out of a CCN.
func (s *Server) Detach(ctx context.Context, who, ccnRef, instRef string) (CCNInfo, error) {
	res, err := s.attach(ctx, ccnRef, instRef, false)
	s.auditResult(ctx, who, "ccn.detach", ccnRef+" "+instRef, err)
	return res, err
}

func (s *Server) attach(ctx context.Context, ccnRef, instRef string, attach bool) (CCNInfo, error) {
	unlock, err := s.lockWrite(ctx)
	if err != nil {
		return CCNInfo{}, err
	}
	defer unlock()
	c, e := s.ccnRefLocked(ccnRef)
	if e != nil {
		return CCNInfo{}, e
	}
	in, e := s.instanceRefLocked(instRef)
	if e != nil {
		return CCNInfo{}, e
	}
	nin := *in
	if attach {
		if in.CCN == c.ID {
			return s.ccnInfoLocked(c), nil
		}
		if in.CCN != "" {
			return CCNInfo{}, &api.Error{Code: api.CodeInvalidInput, Field: "instance",
				Message: fmt.Sprintf("instance %s is attached to CCN %s", in.Name, s.ccns[in.CCN].Name),
				Fix:     fmt.Sprintf("detach it first: vcpe-hub ccn detach %s %s", s.ccns[in.CCN].Name, in.Name)}
		}
		if e := s.conflictsLocked(in.ID, c.ID, in.Advertised); e != nil {
			e.Message = "cannot attach instance " + in.Name + ": " + e.Message
			return CCNInfo{}, e
		}
		nin.CCN = c.ID
	} else {
		if in.CCN != c.ID {
			return CCNInfo{}, &api.Error{Code: api.CodeInvalidInput, Field: "instance",
				Message: fmt.Sprintf("instance %s is not attached to CCN %s", in.Name, c.Name), Fix: "see vcpe-hub ccn list"}
		}
		nin.CCN = ""
	}
	if err := s.store.UpdateInstance(ctx, nin); err != nil {
		return CCNInfo{}, internal(err)
	}
	*in = nin
	if attach {
		s.members[c.ID][in.ID] = true
	} else {
		delete(s.members[c.ID], in.ID)
	}
	s.changedLocked(ctx)
	return s.ccnInfoLocked(c), nil
}

// Routes reports which prefixes each instance advertises and who learns
// them, for every instance or for the members of one CCN.
func (s *Server) Routes(ccnRef string) (RoutesReport, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	rep := RoutesReport{Cloud: nonNil(s.opts.CloudPrefixes), CloudLearnedBy: []string{}, Instances: []RouteEntry{}}
	var only string
	if ccnRef != "" {
		c, e := s.ccnRefLocked(ccnRef)
		if e != nil {
			return RoutesReport{}, e
		}
		only = c.ID
	}
	for _, in := range s.instances {
		if only != "" && in.CCN != only {
			continue
		}
		e := RouteEntry{Instance: in.Name, InstanceID: in.ID, Active: s.activeLocked(in.ID), Prefixes: nonNil(in.Advertised), LearnedBy: []string{}}
		if in.CCN != "" {
			e.CCN = s.ccns[in.CCN].Name
			rep.CloudLearnedBy = append(rep.CloudLearnedBy, in.Name)
			if e.Active != "" {
				for other := range s.members[in.CCN] {
					if other != in.ID {
						e.LearnedBy = append(e.LearnedBy, s.instances[other].Name)
					}
				}
			}
		}
		slices.Sort(e.LearnedBy)
		rep.Instances = append(rep.Instances, e)
	}
	slices.Sort(rep.CloudLearnedBy)
	slices.SortFunc(rep.Instances, func(a, b RouteEntry) int { return strings.Compare(a.Instance, b.Instance) })
	return rep, nil
}

func (s *Server) auditResult(ctx context.Context, who, action, target string, err error) {
	result, detail := "ok", ""
	if err != nil {
		result = "error"
		var ae *api.Error
		if errors.As(err, &ae) {
			result = ae.Code
		}
		detail = err.Error()
	}
	s.audit(ctx, who, action, target, result, detail)
}

// AuditEntry is one line of the audit log as the admin API shows it.
type AuditEntry struct {
	At     time.Time `json:"at"`
	Who    string    `json:"who"`
	Action string    `json:"action"`
	Target string    `json:"target"`
	Result string    `json:"result"`
	Detail string    `json:"detail,omitempty"`
}

// AuditLog returns the last n audit entries, oldest first.
func (s *Server) AuditLog(ctx context.Context, n int) ([]AuditEntry, error) {
	if n < 1 || n > 100_000 {
		return nil, &api.Error{Code: api.CodeInvalidInput, Field: "last", Message: fmt.Sprintf("%d entries", n), Fix: "ask for 1 to 100000 entries"}
	}
	es, err := s.store.Audit(ctx, n)
	if err != nil {
		return nil, internal(err)
	}
	out := make([]AuditEntry, len(es))
	for i, e := range es {
		out[i] = AuditEntry(e)
	}
	return out, nil
}
