package device

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/openvcpe/vcpe/api"
	"github.com/openvcpe/vcpe/internal/jsonhttp"
)

// ClientOptions tune a Client; the zero value is right for production.
type ClientOptions struct {
	// Dial replaces the TCP dialer (tests use in-memory connections).
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
	// Timeout bounds each call; default 30 s.
	Timeout time.Duration
}

// Client talks to the controller over HTTPS, trusting only the CA whose
// SHA-256 fingerprint it was given. There is no way to turn that off.
type Client struct {
	bases       []*url.URL // the controller's URLs (replicas), tried in turn
	cur         atomic.Int32
	fingerprint string
	header      http.Header
	hc          *http.Client
	long        *http.Client // long-polls: bounded by their context only
}

// FingerprintError means the controller presented no certificate chain
// signed by the pinned CA.
type FingerprintError struct {
	Want string
	Got  []string // fingerprints of the certificates presented
}

func (e *FingerprintError) Error() string {
	return fmt.Sprintf("the controller's certificate is not from the CA pinned by --controller-fingerprint %s (it presented %s); check the fingerprint printed by vcpe-hub serve (or vcpe-hub fingerprint) and the --controller URL",
		e.Want, strings.Join(e.Got, ", "))
}

// UnreachableError means no HTTPS connection to the controller could be
// made.
type UnreachableError struct {
	URL string
	Err error
}

func (e *UnreachableError) Error() string {
	return fmt.Sprintf("controller %s is unreachable: %v; check --controller, that vcpe-hub serve is running and that its TCP port is open", e.URL, e.Err)
}

func (e *UnreachableError) Unwrap() error { return e.Err }

// ParseControllerURL checks a --controller value: https://HOST[:PORT].
func ParseControllerURL(s string) (*url.URL, error) {
	u, err := url.Parse(s)
	if err != nil || u.Scheme != "https" || u.Host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.User != nil {
		return nil, &api.InputError{Field: "--controller", Msg: fmt.Sprintf("%q: want https://HOST:PORT (for example https://198.18.0.1:8443)", s)}
	}
	u.Path = ""
	return u, nil
}

// ParseFingerprint checks a --controller-fingerprint value and returns it
// as sha256:<64 lower-case hex digits>. Colons between bytes are accepted.
func ParseFingerprint(s string) (string, error) {
	h, ok := strings.CutPrefix(strings.ToLower(strings.TrimSpace(s)), "sha256:")
	h = strings.ReplaceAll(h, ":", "")
	if b, err := hex.DecodeString(h); !ok || err != nil || len(b) != sha256.Size {
		return "", &api.InputError{Field: "--controller-fingerprint", Msg: fmt.Sprintf("%q: want sha256: followed by 64 hex digits, as vcpe-hub serve prints it", s)}
	}
	return "sha256:" + h, nil
}

// NewClient returns a client for the controller at controllerURL whose CA
// has the given fingerprint.
func NewClient(controllerURL, fingerprint string, opts ClientOptions) (*Client, error) {
	u, err := ParseControllerURL(controllerURL)
	if err != nil {
		return nil, err
	}
	fp, err := ParseFingerprint(fingerprint)
	if err != nil {
		return nil, err
	}
	if opts.Timeout == 0 {
		opts.Timeout = 30 * time.Second
	}
	tr := &http.Transport{
		TLSClientConfig: &tls.Config{
			MinVersion: tls.VersionTLS13,
			// Verification is done by VerifyConnection against the pinned
			// CA only; the system roots play no part.
			InsecureSkipVerify: true,
			VerifyConnection:   func(cs tls.ConnectionState) error { return verifyPinned(cs, fp) },
		},
		DialContext:         opts.Dial,
		TLSHandshakeTimeout: 10 * time.Second,
		ForceAttemptHTTP2:   true,
	}
	if tr.DialContext == nil {
		tr.DialContext = (&net.Dialer{Timeout: 10 * time.Second}).DialContext
	}
	return &Client{bases: []*url.URL{u}, fingerprint: fp, hc: &http.Client{Transport: tr, Timeout: opts.Timeout, CheckRedirect: refuseRedirect}, long: &http.Client{Transport: tr, CheckRedirect: refuseRedirect}}, nil
}

// AddControllers adds more URLs of the same controller (replicas behind no
// load balancer): a call that cannot reach one tries the next, and the
// client stays with the one that answered. They must present certificates
// from the same pinned CA.
func (c *Client) AddControllers(urls ...string) error {
	for _, s := range urls {
		u, err := ParseControllerURL(s)
		if err != nil {
			return err
		}
		c.bases = append(c.bases, u)
	}
	return nil
}

func (c *Client) setCredential(credential string) {
	if credential != "" {
		c.header = http.Header{"Authorization": {"Bearer " + credential}}
	}
}

// NewClientFromState returns a client that authenticates as the device in
// st (for config sync and route changes).
func NewClientFromState(st *State, opts ClientOptions) (*Client, error) {
	c, err := NewClient(st.Controller, st.ControllerFingerprint, opts)
	if err != nil {
		return nil, fmt.Errorf("device state: %w", err)
	}
	c.setCredential(st.Credential)
	if err := c.AddControllers(st.Controllers...); err != nil {
		return nil, fmt.Errorf("device state: %w", err)
	}
	return c, nil
}

// WithCredential returns a client that shares c's connections and
// authenticates as the device holding credential.
func (c *Client) WithCredential(credential string) *Client {
	cc := &Client{bases: c.bases, fingerprint: c.fingerprint, hc: c.hc, long: c.long}
	cc.cur.Store(c.cur.Load())
	cc.header = http.Header{"Authorization": {"Bearer " + credential}}
	return cc
}

func fingerprintOf(c *x509.Certificate) string {
	sum := sha256.Sum256(c.Raw)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// verifyPinned accepts the connection when one of the presented
// certificates is the pinned CA and the leaf verifies against it. Host
// names are not checked: the pinned CA is this controller's own.
func verifyPinned(cs tls.ConnectionState, fp string) error {
	if len(cs.PeerCertificates) == 0 {
		return &FingerprintError{Want: fp}
	}
	var got []string
	for _, c := range cs.PeerCertificates {
		f := fingerprintOf(c)
		got = append(got, f)
		if f != fp || !c.IsCA {
			continue
		}
		roots := x509.NewCertPool()
		roots.AddCert(c)
		if _, err := cs.PeerCertificates[0].Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err != nil {
			return fmt.Errorf("controller certificate does not verify against the pinned CA: %w", err)
		}
		return nil
	}
	return &FingerprintError{Want: fp, Got: got}
}

func (c *Client) do(ctx context.Context, method, path string, body, out any) error {
	return c.doWith(ctx, c.hc, method, path, body, out)
}

// doWith makes the call on the current controller URL, and on the next
// ones in turn while they are unreachable (or answer that they cannot
// reach their database).
func (c *Client) doWith(ctx context.Context, hc *http.Client, method, path string, body, out any) error {
	start := int(c.cur.Load())
	var err error
	for i := range c.bases {
		n := (start + i) % len(c.bases)
		base := c.bases[n]
		j := jsonhttp.Client{HTTP: hc, Base: base.String(), Header: c.header, Errors: func(err error) error { return apiError(base, err) }}
		err = j.Do(ctx, method, path, body, out)
		var ue *UnreachableError
		var ae *api.Error
		if errors.As(err, &ae) && (ae.Code == api.CodeInternal || ae.Code == api.CodeUnavailable) && i < len(c.bases)-1 && ctx.Err() == nil {
			continue
		}
		if !errors.As(err, &ue) || ctx.Err() != nil {
			if err == nil {
				c.cur.Store(int32(n))
			}
			return err
		}
	}
	return err
}

// apiError turns the JSON client's errors into the device API's: an
// *api.Error, a *FingerprintError or an *UnreachableError.
func apiError(base *url.URL, err error) error {
	var te *jsonhttp.TransportError
	if errors.As(err, &te) {
		var fe *FingerprintError
		if errors.As(err, &fe) {
			return fe
		}
		return &UnreachableError{URL: base.String(), Err: te.Err}
	}
	var se *jsonhttp.StatusError
	if errors.As(err, &se) {
		var ae api.Error
		if se.Decode(&ae) && ae.Code != "" {
			return &ae
		}
		if se.Code >= 500 {
			// A proxy in front of a dead replica: try another.
			return &UnreachableError{URL: base.String(), Err: fmt.Errorf("answered %s", se.Status)}
		}
		return fmt.Errorf("controller answered %s to %s %s", se.Status, se.Method, se.Path)
	}
	return err
}

// RegisterRequest is what Client.Register needs. Key is the device key as
// issued; it is used only to compute the proof.
type RegisterRequest struct {
	SN        string
	Key       string
	PublicKey api.Key
	Advertise []netip.Prefix
	// ProbeAddrs are this host's addresses inside Advertise where its
	// probe reflector answers (not part of the proof).
	ProbeAddrs []netip.Addr
	// LANGateway is the multi-attach gateway the device will hold while
	// active (not part of the proof).
	LANGateway netip.Prefix
}

// Register runs the challenge-response registration. API refusals are
// *api.Error.
func (c *Client) Register(ctx context.Context, r RegisterRequest) (api.RegisterResponse, error) {
	var ch api.Challenge
	if err := c.do(ctx, http.MethodPost, "/v1/register/challenge", api.ChallengeRequest{SN: r.SN}, &ch); err != nil {
		return api.RegisterResponse{}, err
	}
	req := api.RegisterRequest{
		SN: r.SN, Nonce: ch.Nonce, PublicKey: r.PublicKey, Advertise: r.Advertise, ProbeAddrs: r.ProbeAddrs, LANGateway: r.LANGateway,
		Proof: api.RegistrationProof(api.DeviceKeySecret(r.Key), ch.Nonce, r.SN, r.PublicKey, r.Advertise),
	}
	var res api.RegisterResponse
	if err := c.do(ctx, http.MethodPost, "/v1/register", req, &res); err != nil {
		return api.RegisterResponse{}, err
	}
	return res, nil
}

// DeviceConfig fetches the device's current configuration. A revoked
// device or one whose key was reset gets an *api.Error with CodeRevoked or
// CodeKeyReset.
func (c *Client) DeviceConfig(ctx context.Context) (api.DeviceConfig, error) {
	var cfg api.DeviceConfig
	return cfg, c.do(ctx, http.MethodGet, "/v1/device/config", nil, &cfg)
}

// HubEndpoints asks the controller which UDP endpoints its devices dial
// (every hub of the group). It needs no credential.
func (c *Client) HubEndpoints(ctx context.Context) ([]netip.AddrPort, error) {
	var h api.HubEndpoints
	return h.Endpoints, c.do(ctx, http.MethodGet, "/v1/hubs", nil, &h)
}

// WaitDeviceConfig long-polls the device's configuration: the controller
// answers as soon as its generation is not gen, or after wait (at most 25
// s) with the unchanged one.
func (c *Client) WaitDeviceConfig(ctx context.Context, gen uint64, wait time.Duration) (api.DeviceConfig, error) {
	secs := max(1, int(wait/time.Second))
	ctx, cancel := context.WithTimeout(ctx, time.Duration(secs)*time.Second+15*time.Second)
	defer cancel()
	var cfg api.DeviceConfig
	return cfg, c.doWith(ctx, c.long, http.MethodGet, fmt.Sprintf("/v1/device/config?wait=%d&timeout=%d", gen, secs), nil, &cfg)
}

// Release gives this device's registration back, so the same SN and key
// can register again (from a new WireGuard key).
func (c *Client) Release(ctx context.Context) error {
	return c.do(ctx, http.MethodPost, "/v1/device/release", struct{}{}, nil)
}

// ReleaseWithKey gives the slot of sn back when it is bound to the
// WireGuard key priv, without the credential: the device proves it holds
// priv (api.KeyProof). released is false when sn was not bound to that key
// (nothing to undo). It is how an install whose registration answer never
// arrived, or whose state file is lost, undoes its registration.
func (c *Client) ReleaseWithKey(ctx context.Context, sn string, priv api.Key) (released bool, err error) {
	var ch api.Challenge
	if err := c.do(ctx, http.MethodPost, "/v1/register/challenge", api.ChallengeRequest{SN: sn}, &ch); err != nil {
		return false, err
	}
	if ch.HubPublicKey.IsZero() {
		return false, fmt.Errorf("the controller %s does not support releasing by WireGuard key (no hub key in its challenge); upgrade vcpe-hub", c.bases[int(c.cur.Load())%len(c.bases)])
	}
	req := api.ReleaseRequest{SN: sn, Nonce: ch.Nonce, PublicKey: priv.PublicKey(), Proof: api.KeyProof(priv, ch.HubPublicKey, ch.Nonce, sn)}
	var res api.ReleaseResponse
	if err := c.do(ctx, http.MethodPost, "/v1/device/release", req, &res); err != nil {
		return false, err
	}
	return res.Released, nil
}

// AdvertiseRoutes replaces the LAN prefixes the device's instance
// advertises, and this device's probe addresses inside them (see
// ProbeAddrsIn), and returns the new configuration.
func (c *Client) AdvertiseRoutes(ctx context.Context, ps []netip.Prefix, probe ...netip.Addr) (api.DeviceConfig, error) {
	var cfg api.DeviceConfig
	if ps == nil {
		ps = []netip.Prefix{}
	}
	return cfg, c.do(ctx, http.MethodPost, "/v1/device/routes", api.AdvertiseRequest{Advertise: ps, ProbeAddrs: probe}, &cfg)
}

// Reach asks the controller to probe the address this request comes from
// on api.ReachPorts with req's nonce (POST /v1/reach; no credential is
// needed, so it works before registration).
func (c *Client) Reach(ctx context.Context, req api.ReachRequest) (api.ReachResponse, error) {
	var res api.ReachResponse
	err := c.do(ctx, http.MethodPost, "/v1/reach", req, &res)
	return res, err
}

// refuseRedirect refuses every redirect: the device API never redirects,
// and following one could send the device credential elsewhere, even in
// clear over http://.
func refuseRedirect(req *http.Request, _ []*http.Request) error {
	return fmt.Errorf("the controller answered with a redirect to %s: refused (the device API never redirects; check --controller)", req.URL.Redacted())
}
