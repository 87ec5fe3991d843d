package controller

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/openvcpe/vcpe/api"
)

// maxBody bounds every request body.
const maxBody = 64 << 10

// HTTPStatus is the status code an API error code answers with.
func HTTPStatus(code string) int {
	switch code {
	case api.CodeInvalidInput:
		return http.StatusBadRequest
	case api.CodeUnauthorized, api.CodeRevoked, api.CodeKeyReset, api.CodeReleased:
		return http.StatusUnauthorized
	case api.CodeRateLimited:
		return http.StatusTooManyRequests
	case api.CodeSlotTaken, api.CodePrefixConflict, api.CodeQuota:
		return http.StatusConflict
	case api.CodeNotFound:
		return http.StatusNotFound
	case api.CodeUnavailable:
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// writeError answers a device: an internal error says only that it is
// one; a storage failure is 503 with Retry-After and no details of the
// controller's disk.
func (s *Server) writeError(w http.ResponseWriter, err error) {
	var ae *api.Error
	if !errors.As(err, &ae) {
		ae = internal(err)
	}
	switch ae.Code {
	case api.CodeInternal:
		s.log.Error("api", "err", ae.Message)
		ae = &api.Error{Code: api.CodeInternal, Message: "internal error; see the controller's log"}
	case api.CodeUnavailable:
		s.log.Error("api: store unavailable", "err", ae.Message, "fix", ae.Fix)
		ae = &api.Error{Code: api.CodeUnavailable, RetryAfter: ae.RetryAfter,
			Message: "the controller cannot store this now; nothing was refused",
			Fix:     fmt.Sprintf("retry in %d seconds", ae.RetryAfter)}
	}
	s.writeAPIError(w, ae)
}

// writeAdminError answers the root-only admin socket: the cause and the
// fix of a storage failure or an internal error are shown, not hidden.
func (s *Server) writeAdminError(w http.ResponseWriter, err error) {
	var ae *api.Error
	if !errors.As(err, &ae) {
		ae = internal(err)
	}
	if ae.Code == api.CodeInternal || ae.Code == api.CodeUnavailable {
		s.log.Error("admin api", "err", ae.Message)
		if ae.Fix == "" {
			ae.Fix = "see the controller's log"
		}
	}
	s.writeAPIError(w, ae)
}

func (s *Server) writeAPIError(w http.ResponseWriter, ae *api.Error) {
	if ae.RetryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(ae.RetryAfter))
	}
	writeJSON(w, HTTPStatus(ae.Code), ae)
}

// DecodeJSON reads one JSON document of at most maxBody bytes into v.
func DecodeJSON(r *http.Request, w http.ResponseWriter, v any) error {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBody))
	if err := dec.Decode(v); err != nil {
		return &api.Error{Code: api.CodeInvalidInput, Message: fmt.Sprintf("request body: %v", err), Fix: "send one JSON document as the API describes"}
	}
	return nil
}

func remoteAddr(r *http.Request) netip.Addr {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return netip.IPv4Unspecified()
	}
	return ap.Addr().Unmap()
}

func bearer(r *http.Request) string {
	h := r.Header.Get("Authorization")
	if t, ok := strings.CutPrefix(h, "Bearer "); ok {
		return strings.TrimSpace(t)
	}
	return ""
}

// handler is the device API's adaptor: see handlerWith; errors are sent by
// writeError, which hides the controller's internals from devices.
func (s *Server) handler(f func(r *http.Request) (any, error)) http.HandlerFunc {
	return s.handlerWith(s.writeError, f)
}

// handlerWith is the one adaptor of both APIs: f reads the request (its
// body bounded to maxBody) and returns the answer, sent as 200 OK JSON, or
// an error, sent by writeErr (writeError for devices, writeAdminError for
// the root-only admin socket).
func (s *Server) handlerWith(writeErr func(http.ResponseWriter, error), f func(r *http.Request) (any, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, maxBody)
		v, err := f(r)
		if err != nil {
			writeErr(w, err)
			return
		}
		writeJSON(w, http.StatusOK, v)
	}
}

// decode reads the request body as one JSON document of type T.
func decode[T any](r *http.Request) (T, error) {
	var v T
	err := DecodeJSON(r, nil, &v)
	return v, err
}

// waitParams reads a long-poll's ?wait=GEN&timeout=SECONDS: answer when
// the generation is not GEN, or after the timeout (default and most
// MaxWait). No wait parameter: answer at once (timeout 0).
func waitParams(r *http.Request) (uint64, time.Duration, error) {
	q := r.URL.Query()
	if !q.Has("wait") {
		return 0, 0, nil
	}
	wait, err := strconv.ParseUint(q.Get("wait"), 10, 64)
	if err != nil {
		return 0, 0, &api.Error{Code: api.CodeInvalidInput, Field: "wait", Message: "wait is not a generation number", Fix: "pass the generation the device has, e.g. ?wait=12"}
	}
	timeout := MaxWait
	if t := q.Get("timeout"); t != "" {
		n, err := strconv.Atoi(t)
		if err != nil || n < 1 {
			return 0, 0, &api.Error{Code: api.CodeInvalidInput, Field: "timeout", Message: "timeout is not a number of seconds", Fix: "pass 1 to 25, e.g. &timeout=20"}
		}
		timeout = min(time.Duration(n)*time.Second, MaxWait)
	}
	return wait, timeout, nil
}

// DeviceHandler is the device API (served over HTTPS).
func (s *Server) DeviceHandler() http.Handler {
	mux := http.NewServeMux()
	handle := func(pattern string, f func(r *http.Request) (any, error)) { mux.HandleFunc(pattern, s.handler(f)) }
	handle("POST /v1/register/challenge", func(r *http.Request) (any, error) {
		req, err := decode[api.ChallengeRequest](r)
		if err != nil {
			return nil, err
		}
		return s.Challenge(remoteAddr(r), req.SN)
	})
	handle("POST /v1/register", func(r *http.Request) (any, error) {
		req, err := decode[api.RegisterRequest](r)
		if err != nil {
			return nil, err
		}
		return s.Register(r.Context(), remoteAddr(r), req)
	})
	handle("GET /v1/device/config", func(r *http.Request) (any, error) {
		wait, timeout, err := waitParams(r)
		if err != nil || timeout == 0 {
			if err != nil {
				return nil, err
			}
			return s.DeviceConfig(bearer(r))
		}
		ctx, cancel := context.WithTimeout(r.Context(), timeout)
		defer cancel()
		return s.WaitDeviceConfig(ctx, bearer(r), wait)
	})
	handle("POST /v1/device/routes", func(r *http.Request) (any, error) {
		req, err := decode[api.AdvertiseRequest](r)
		if err != nil {
			return nil, err
		}
		return s.Advertise(r.Context(), bearer(r), req.Advertise, req.ProbeAddrs)
	})
	handle("POST /v1/device/release", func(r *http.Request) (any, error) {
		if cred := bearer(r); cred != "" {
			return api.ReleaseResponse{Released: true}, s.Release(r.Context(), remoteAddr(r), cred)
		}
		req, err := decode[api.ReleaseRequest](r)
		if err != nil {
			return nil, err
		}
		return s.ReleaseByKey(r.Context(), remoteAddr(r), req)
	})
	handle("POST /v1/reach", s.reach)
	handle("GET /v1/hubs", func(r *http.Request) (any, error) { return s.HubEndpoints(remoteAddr(r)) })
	s.hubHandlers(handle)
	handle("/", func(r *http.Request) (any, error) {
		return nil, &api.Error{Code: api.CodeNotFound, Message: fmt.Sprintf("no API at %s %s", r.Method, r.URL.Path)}
	})
	return mux
}

type whoKey struct{}

// AdminHandler is the admin API (served on the unix socket). Callers that
// are neither root nor the server's own user are refused.
func (s *Server) AdminHandler() http.Handler {
	mux := http.NewServeMux()
	handle := func(pattern string, f func(r *http.Request, who string) (any, error)) {
		mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
			who, _ := r.Context().Value(whoKey{}).(peer)
			if !who.allowed() {
				s.audit(r.Context(), who.String(), "admin", r.URL.Path, "forbidden", "")
				writeJSON(w, http.StatusForbidden, &api.Error{Code: api.CodeUnauthorized, Message: "the admin API is for root only", Fix: "run vcpe-hub as root"})
				return
			}
			s.handlerWith(s.writeAdminError, func(r *http.Request) (any, error) { return f(r, who.String()) })(w, r)
		})
	}
	handle("POST /admin/v1/instances", func(r *http.Request, who string) (any, error) {
		var req CreateInstanceRequest
		if err := DecodeJSON(r, nil, &req); err != nil {
			return nil, err
		}
		return s.CreateInstance(r.Context(), who, req)
	})
	handle("GET /admin/v1/instances", func(*http.Request, string) (any, error) { return s.ListInstances(), nil })
	handle("GET /admin/v1/instances/{ref}", func(r *http.Request, _ string) (any, error) { return s.ShowInstance(r.PathValue("ref")) })
	handle("DELETE /admin/v1/instances/{ref}", func(r *http.Request, who string) (any, error) {
		return struct{}{}, s.DeleteInstance(r.Context(), who, r.PathValue("ref"))
	})
	handle("GET /admin/v1/devices", func(*http.Request, string) (any, error) { return s.ListDevices(), nil })
	handle("POST /admin/v1/devices/{sn}/reset-key", func(r *http.Request, who string) (any, error) {
		return s.ResetKey(r.Context(), who, r.PathValue("sn"))
	})
	handle("POST /admin/v1/devices/{sn}/revoke", func(r *http.Request, who string) (any, error) {
		return struct{}{}, s.Revoke(r.Context(), who, r.PathValue("sn"))
	})
	handle("POST /admin/v1/ccns", func(r *http.Request, who string) (any, error) {
		var req struct {
			Name string `json:"name"`
		}
		if err := DecodeJSON(r, nil, &req); err != nil {
			return nil, err
		}
		return s.CreateCCN(r.Context(), who, req.Name)
	})
	handle("GET /admin/v1/ccns", func(*http.Request, string) (any, error) { return s.ListCCNs(), nil })
	handle("POST /admin/v1/hubs", func(r *http.Request, who string) (any, error) {
		var req struct {
			Name string `json:"name"`
		}
		if err := DecodeJSON(r, nil, &req); err != nil {
			return nil, err
		}
		return s.CreateHubCredential(r.Context(), who, req.Name)
	})
	handle("GET /admin/v1/hubs", func(*http.Request, string) (any, error) { return s.ListHubs(), nil })
	handle("DELETE /admin/v1/hubs/{name}", func(r *http.Request, who string) (any, error) {
		return struct{}{}, s.RemoveHub(r.Context(), who, r.PathValue("name"))
	})
	handle("POST /admin/v1/instances/{ref}/hubs", func(r *http.Request, who string) (any, error) {
		var req SetHubsRequest
		if err := DecodeJSON(r, nil, &req); err != nil {
			return nil, err
		}
		return s.SetInstanceHubs(r.Context(), who, r.PathValue("ref"), req.Primary, req.Secondary)
	})
	for _, op := range []string{"attach", "detach"} {
		handle("POST /admin/v1/ccns/{ref}/"+op, func(r *http.Request, who string) (any, error) {
			var req struct {
				Instance string `json:"instance"`
			}
			if err := DecodeJSON(r, nil, &req); err != nil {
				return nil, err
			}
			if op == "attach" {
				return s.Attach(r.Context(), who, r.PathValue("ref"), req.Instance)
			}
			return s.Detach(r.Context(), who, r.PathValue("ref"), req.Instance)
		})
	}
	handle("GET /admin/v1/routes", func(r *http.Request, _ string) (any, error) { return s.Routes(r.URL.Query().Get("ccn")) })
	handle("GET /admin/v1/audit", func(r *http.Request, _ string) (any, error) {
		n, err := strconv.Atoi(r.URL.Query().Get("last"))
		if err != nil {
			return nil, &api.Error{Code: api.CodeInvalidInput, Field: "last", Message: "last is not a number"}
		}
		return s.AuditLog(r.Context(), n)
	})
	handle("GET /admin/v1/hub", func(r *http.Request, _ string) (any, error) {
		if name := r.URL.Query().Get("hub"); name != "" {
			return s.HubConfigFor(name), nil // the view of hub name (hub groups)
		}
		return s.HubConfig(), nil
	})
	handle("GET /admin/v1/status", func(*http.Request, string) (any, error) {
		return Status{Fingerprint: s.fingerprint, HubEndpoint: s.opts.HubEndpoint, HubPublicKey: s.HubPublicKey(), Overlay: s.opts.Overlay}, nil
	})
	return mux
}

// Status is the answer of the admin status call.
type Status struct {
	Fingerprint  string         `json:"fingerprint"`
	HubEndpoint  netip.AddrPort `json:"hub_endpoint"`
	HubPublicKey api.Key        `json:"hub_public_key"`
	Overlay      netip.Prefix   `json:"overlay"`
}

// ListenAdmin listens on the admin socket in dir (mode 0600). A socket left
// by a server that died is replaced; one that answers means another server
// runs on this state directory.
func ListenAdmin(dir string) (net.Listener, error) {
	path := filepath.Join(dir, AdminSocket)
	if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
		c.Close()
		return nil, fmt.Errorf("another vcpe-hub serve is running on %s (its admin socket %s answers): stop it or use another --state", dir, path)
	}
	_ = os.Remove(path)
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("listen on admin socket %s: %w", path, err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return nil, fmt.Errorf("listen on admin socket %s: %w", path, err)
	}
	return ln, nil
}

// deviceServer is the device API's HTTP server. endPolls ends every
// request's context: called before Shutdown, it answers the long-polls at
// once (with the unchanged configuration), which Shutdown would otherwise
// wait for until they time out.
func (s *Server) deviceServer() (srv *http.Server, endPolls context.CancelFunc) {
	base, endPolls := context.WithCancel(context.Background())
	return &http.Server{
		Handler: s.DeviceHandler(), TLSConfig: s.TLSConfig(), ErrorLog: slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
		ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second, WriteTimeout: 30 * time.Second, IdleTimeout: time.Minute,
		MaxHeaderBytes: 16 << 10,
		BaseContext:    func(net.Listener) context.Context { return base },
	}, endPolls
}

// ServeDevice serves only the device API over TLS on ln until ctx ends,
// then shuts it down gracefully. Serve does this and the admin API.
func (s *Server) ServeDevice(ctx context.Context, ln net.Listener) error {
	srv, endPolls := s.deviceServer()
	defer endPolls()
	errc := make(chan error, 1)
	go func() {
		errc <- srv.Serve(tls.NewListener(newLimitListener(ln, MaxConnsPerSource, MaxConns), srv.TLSConfig))
	}()
	var err error
	select {
	case <-ctx.Done():
		endPolls()
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
		err = <-errc
	case err = <-errc:
	}
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return fmt.Errorf("serve device API on %s: %w", ln.Addr(), err)
}

// Serve serves the device API over TLS on ln and the admin API on admin
// until ctx ends, then shuts both down gracefully (10 s for requests in
// flight).
func (s *Server) Serve(ctx context.Context, ln, admin net.Listener) error {
	dev, endPolls := s.deviceServer()
	defer endPolls()
	adm := &http.Server{
		Handler: s.AdminHandler(), ErrorLog: dev.ErrorLog, ReadHeaderTimeout: 10 * time.Second,
		ConnContext: func(ctx context.Context, c net.Conn) context.Context {
			return context.WithValue(ctx, whoKey{}, peerOf(c))
		},
	}
	s.log.Info("controller serving", "listen", ln.Addr().String(), "admin", admin.Addr().String(), "fingerprint", s.fingerprint, "hub_endpoint", s.opts.HubEndpoint.String())
	errc := make(chan error, 2)
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		errc <- dev.Serve(tls.NewListener(newLimitListener(ln, MaxConnsPerSource, MaxConns), dev.TLSConfig))
	}()
	go func() { defer wg.Done(); errc <- adm.Serve(admin) }()
	var err error
	select {
	case <-ctx.Done():
	case err = <-errc:
	}
	endPolls()
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	_ = dev.Shutdown(sctx)
	_ = adm.Shutdown(sctx)
	wg.Wait()
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	if err != nil {
		return fmt.Errorf("serve controller API: %w", err)
	}
	s.log.Info("controller stopped")
	return nil
}
