package controller_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/openvcpe/vcpe/api"
	"github.com/openvcpe/vcpe/controller"
	"github.com/openvcpe/vcpe/controller/controllertest"
)

// FuzzDeviceAPIAuthenticated plays a device holding a valid credential
// against the routes and config endpoints, from several source addresses,
// with a clock that advances. Whatever it sends: the answer is a known
// status with a well-formed body, the victim in another CCN keeps its
// prefix on the hub, no prefix is held by two peers, and nothing routed
// leaves the allowed pools or covers the hub endpoint.
func FuzzDeviceAPIAuthenticated(f *testing.F) {
	h := controllertest.Serve(f)
	a := h.Admin()
	for _, s := range []struct{ ccn, inst string }{{"bank", "victim"}, {"evil", "attacker"}} {
		if _, err := a.CreateCCN(ctx(f), s.ccn); err != nil {
			f.Fatal(err)
		}
	}
	victim, attacker := newInstance(f, h, "victim"), newInstance(f, h, "attacker")
	for _, s := range []struct{ ccn, inst string }{{"bank", "victim"}, {"evil", "attacker"}} {
		if _, err := a.Attach(ctx(f), s.ccn, s.inst); err != nil {
			f.Fatal(err)
		}
	}
	if _, err := register(f, h, site1, victim.Devices[0].SN, victim.Devices[0].Key, wgKey(f).PublicKey(), lan1); err != nil {
		f.Fatal(err)
	}
	res, err := register(f, h, evil, attacker.Devices[0].SN, attacker.Devices[0].Key, wgKey(f).PublicKey(), lan2)
	if err != nil {
		f.Fatal(err)
	}
	cred := res.Credential
	handler := h.DeviceHandler()
	srcs := []string{"198.18.0.99:1", "198.18.0.98:2", "[2001:db8::1]:3", "[2001:db8::2]:4"}
	f.Add(uint8(0), []byte(`{"advertise":["198.19.1.0/24"]}`), uint8(0), uint16(1))
	f.Add(uint8(0), []byte(`{"advertise":["198.18.0.0/24","8.0.0.0/8"],"probe_addrs":["198.18.0.1"]}`), uint8(1), uint16(0))
	f.Add(uint8(0), []byte(`{"advertise":["198.19.2.0/24"],"probe_addrs":["198.19.2.1"]}`), uint8(2), uint16(60000))
	f.Add(uint8(1), []byte(``), uint8(3), uint16(5))
	f.Fuzz(func(t *testing.T, which uint8, body []byte, src uint8, advance uint16) {
		h.Clock.Advance(time.Duration(advance) * time.Millisecond)
		method, path := "POST", "/v1/device/routes"
		if which%2 == 1 {
			method, path = "GET", "/v1/device/config"
		}
		req := httptest.NewRequest(method, path, bytes.NewReader(body))
		req.RemoteAddr = srcs[int(src)%len(srcs)]
		req.Header.Set("Authorization", "Bearer "+cred)
		rec := httptest.NewRecorder()
		handler.ServeHTTP(rec, req)
		switch rec.Code {
		case http.StatusOK:
			var cfg api.DeviceConfig
			if err := json.Unmarshal(rec.Body.Bytes(), &cfg); err != nil {
				t.Fatalf("200 answer is not a config: %q", rec.Body.Bytes())
			}
		case http.StatusBadRequest, http.StatusConflict, http.StatusTooManyRequests:
			var e api.Error
			if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil || e.Code == "" || e.Message == "" {
				t.Fatalf("%d answer is not an api.Error: %q", rec.Code, rec.Body.Bytes())
			}
		default:
			t.Fatalf("%s %s answered %d: %s", method, path, rec.Code, rec.Body.Bytes())
		}
		var held []netip.Prefix
		for _, p := range h.HubConfig().Peers {
			for _, q := range p.AllowedIPs[1:] {
				if slices.ContainsFunc(held, q.Overlaps) {
					t.Fatalf("prefix %s held by two peers", q)
				}
				held = append(held, q)
				inPool := slices.ContainsFunc(controller.DefaultLANPools, func(pool netip.Prefix) bool { return pool.Bits() <= q.Bits() && pool.Contains(q.Addr()) })
				if q.Contains(netip.MustParseAddr("198.18.0.1")) || !inPool {
					t.Fatalf("routed %s: covers the hub endpoint or leaves the pools", q)
				}
			}
			if p.SN == victim.Devices[0].SN && !slices.Contains(p.AllowedIPs, lan1) {
				t.Fatalf("victim lost %s: %v", lan1, p.AllowedIPs)
			}
		}
	})
}
