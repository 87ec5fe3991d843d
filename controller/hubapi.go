package controller

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"strings"

	"github.com/openvcpe/vcpe/api"
)

// Hub processes (vcpe-hub serve --role hub) talk to the controller over
// the device API, pinned to the same CA, with a hub credential instead of
// a device credential: they register their own WireGuard key and endpoint
// (hub groups, hubgroup.go), long-poll their view of the hub
// configuration, and report the arbiter's role switches. Hubs of older
// releases fetch the controller's hub key instead (GET /v1/hub/identity).
// A hub credential is stored as its SHA-256 under the setting
// hubcred/NAME, so every replica knows it.

// hubCredPrefix keys the stored hub credentials.
const hubCredPrefix = "hubcred/"

// HubCredential is a newly issued hub credential, shown once.
type HubCredential struct {
	Name       string `json:"name"`
	Credential string `json:"credential"`
}

// CreateHubCredential issues (or replaces) the credential of the hub
// process called name.
func (s *Server) CreateHubCredential(ctx context.Context, who, name string) (*HubCredential, error) {
	res, err := s.createHubCredential(ctx, name)
	s.auditResult(ctx, who, "hub.credential", name, err)
	return res, err
}

func (s *Server) createHubCredential(ctx context.Context, name string) (*HubCredential, error) {
	if e := checkName("name", name); e != nil {
		return nil, e
	}
	cred := "vch_" + strings.TrimRight(b32.EncodeToString(randomBytes(32)), "=")
	sum := sha256.Sum256([]byte(cred))
	unlock, err := s.lockWrite(ctx)
	if err != nil {
		return nil, err
	}
	defer unlock()
	if err := s.store.SetMeta(ctx, hubCredPrefix+name, hex.EncodeToString(sum[:])); err != nil {
		return nil, internal(err)
	}
	s.setHubCredLocked(name, hex.EncodeToString(sum[:]))
	return &HubCredential{Name: name, Credential: cred}, nil
}

func (s *Server) setHubCredLocked(name, hexSum string) {
	if s.hubCreds == nil {
		s.hubCreds = map[string][32]byte{}
	}
	b, err := hex.DecodeString(hexSum)
	if err != nil || len(b) != 32 {
		delete(s.hubCreds, name)
		return
	}
	s.hubCreds[name] = [32]byte(b)
}

// authHub returns the name of the hub holding credential.
func (s *Server) authHub(credential string) (string, error) {
	sum := sha256.Sum256([]byte(credential))
	s.mu.RLock()
	defer s.mu.RUnlock()
	for name, h := range s.hubCreds {
		if credential != "" && h == sum {
			return name, nil
		}
	}
	return "", &api.Error{Code: api.CodeUnauthorized, Message: "the hub credential is not valid",
		Fix: "issue one with vcpe-hub hub credential NAME on a controller and pass it with --hub-credential-file"}
}

func (s *Server) hubHandlers(handle func(pattern string, f func(r *http.Request) (any, error))) {
	handle("POST /v1/hub/register", func(r *http.Request) (any, error) {
		name, err := s.authHub(bearer(r))
		if err != nil {
			return nil, err
		}
		req, err := decode[api.HubRegister](r)
		if err != nil {
			return nil, err
		}
		return s.RegisterHub(r.Context(), name, req)
	})
	handle("GET /v1/hub/config", func(r *http.Request) (any, error) {
		name, err := s.authHub(bearer(r))
		if err != nil {
			return nil, err
		}
		s.mu.RLock()
		_, registered := s.hubs[name]
		s.mu.RUnlock()
		if registered {
			s.touchHub(r.Context(), name, s.now(), false)
		}
		if err := s.freshen(r.Context()); err != nil {
			return nil, err
		}
		wait, timeout, err := waitParams(r)
		if err != nil {
			return nil, err
		}
		if timeout == 0 {
			return s.HubConfigFor(name), nil
		}
		ctx, cancel := context.WithTimeout(r.Context(), timeout)
		defer cancel()
		return s.WaitHubConfigFor(ctx, name, wait), nil
	})
	handle("GET /v1/hub/identity", func(r *http.Request) (any, error) {
		name, err := s.authHub(bearer(r))
		if err != nil {
			return nil, err
		}
		s.audit(r.Context(), "hub:"+name, "hub.identity", name, "ok", "")
		return api.HubIdentity{PrivateKey: s.hubKey}, nil
	})
	handle("POST /v1/hub/active", func(r *http.Request) (any, error) {
		name, err := s.authHub(bearer(r))
		if err != nil {
			return nil, err
		}
		req, err := decode[api.HubActive](r)
		if err != nil {
			return nil, err
		}
		s.SetActive(r.Context(), req.InstanceID, req.SN, fmt.Sprintf("%s (hub %s)", req.Reason, name))
		return struct{}{}, nil
	})
}
