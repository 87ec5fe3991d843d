package controller

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/openvcpe/vcpe/api"
)

// Limits of the outside-in reach check. A source address may ask
// ReachBurst times, then once every ReachEvery; all sources together at
// most reachGlobalPerSec requests a second, reachInFlight at a time. Each
// request sends one small packet per port of api.ReachPorts to the
// requester only.
const (
	ReachBurst        = 3
	ReachEvery        = 20 * time.Second
	reachGlobalPerSec = 10
	reachInFlight     = 8
	reachMaxSources   = 10_000
	reachDialTimeout  = 2 * time.Second
	reachMaxBody      = 1 << 10
)

type reachLimiter struct {
	mu       sync.Mutex
	bySource map[netip.Addr]*rate.Limiter
	global   *rate.Limiter
	inFlight chan struct{}
}

func (s *Server) reachLimiter() *reachLimiter {
	s.reachOnce.Do(func() {
		s.reachLim = &reachLimiter{
			bySource: map[netip.Addr]*rate.Limiter{},
			global:   rate.NewLimiter(reachGlobalPerSec, reachGlobalPerSec),
			inFlight: make(chan struct{}, reachInFlight),
		}
	})
	return s.reachLim
}

// allow takes a token for src, or says how long to wait.
func (l *reachLimiter) allow(src netip.Addr, now time.Time) (time.Duration, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	lim := l.bySource[src]
	if lim == nil {
		if len(l.bySource) >= reachMaxSources {
			for a, x := range l.bySource {
				if x.TokensAt(now) >= ReachBurst {
					delete(l.bySource, a)
				}
			}
			if len(l.bySource) >= reachMaxSources {
				return ReachEvery, false
			}
		}
		lim = rate.NewLimiter(rate.Every(ReachEvery), ReachBurst)
		l.bySource[src] = lim
	}
	if !lim.AllowN(now, 1) {
		r := lim.ReserveN(now, 1)
		d := r.DelayFrom(now)
		r.CancelAt(now)
		return d, false
	}
	if !l.global.AllowN(now, 1) {
		return time.Second, false
	}
	return 0, true
}

func reachRateLimited(d time.Duration, what string) *api.Error {
	secs := int(d.Round(time.Second) / time.Second)
	if secs < 1 {
		secs = 1
	}
	return &api.Error{Code: api.CodeRateLimited, RetryAfter: secs,
		Message: fmt.Sprintf("too many reach checks %s", what), Fix: fmt.Sprintf("wait %ds and ask again", secs)}
}

// reach answers POST /v1/reach: the request names only the nonce; the
// address probed is the one the request came from.
func (s *Server) reach(r *http.Request) (any, error) {
	b, err := io.ReadAll(http.MaxBytesReader(nil, r.Body, reachMaxBody))
	if err != nil {
		return nil, &api.Error{Code: api.CodeInvalidInput, Message: fmt.Sprintf("reach request: %v", err), Fix: `send {"nonce": "<32 hex digits>"}`}
	}
	req, err := api.ParseReachRequest(b)
	if err != nil {
		return nil, err
	}
	return s.Reach(r.Context(), remoteAddr(r), req)
}

// Reach probes src — the address the request came from, and only it — on
// every port of api.ReachPorts with the request's nonce.
func (s *Server) Reach(ctx context.Context, src netip.Addr, req api.ReachRequest) (api.ReachResponse, error) {
	if err := api.CheckReachNonce(req.Nonce); err != nil {
		return api.ReachResponse{}, err
	}
	if !src.IsValid() || src.IsUnspecified() || src.IsMulticast() {
		return api.ReachResponse{}, &api.Error{Code: api.CodeInvalidInput, Message: fmt.Sprintf("cannot probe the source address %s", src)}
	}
	l := s.reachLimiter()
	if d, ok := l.allow(src, s.now()); !ok {
		return api.ReachResponse{}, reachRateLimited(d, "from "+src.String())
	}
	select {
	case l.inFlight <- struct{}{}:
		defer func() { <-l.inFlight }()
	default:
		return api.ReachResponse{}, reachRateLimited(time.Second, "in progress")
	}
	payload := api.ReachPayload(req.Nonce)
	res := api.ReachResponse{Target: src, Nonce: req.Nonce, Probes: make([]api.ReachProbe, len(api.ReachPorts))}
	ctx, cancel := context.WithTimeout(ctx, reachDialTimeout)
	defer cancel()
	var wg sync.WaitGroup
	for i, p := range api.ReachPorts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res.Probes[i] = api.ReachProbe{ReachPort: p}
			if err := sendReach(ctx, p, netip.AddrPortFrom(src, p.Port), payload); err != nil {
				res.Probes[i].Error = err.Error()
				return
			}
			res.Probes[i].Sent = true
		}()
	}
	wg.Wait()
	s.log.Info("reach check", "target", src, "ports", len(res.Probes))
	return res, nil
}

// sendReach sends payload once: one UDP datagram, or one TCP connection
// that writes it and closes.
func sendReach(ctx context.Context, p api.ReachPort, to netip.AddrPort, payload []byte) error {
	var d net.Dialer
	network := p.Proto + "4"
	if to.Addr().Is6() {
		network = p.Proto + "6"
	}
	c, err := d.DialContext(ctx, network, net.JoinHostPort(to.Addr().String(), strconv.Itoa(int(to.Port()))))
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetWriteDeadline(time.Now().Add(reachDialTimeout))
	_, err = c.Write(payload)
	return err
}
