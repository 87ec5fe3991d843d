package controller_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/openvcpe/vcpe/api"
	"github.com/openvcpe/vcpe/controller"
	"github.com/openvcpe/vcpe/controller/controllertest"
)

// FuzzHubRegister feeds arbitrary bodies to POST /v1/hub/register with a
// valid hub credential: the answer is a hub the group can use (an IPv4
// endpoint outside the overlay, an overlay address of the pool that is no
// device's and no other hub's) or an api.Error naming the field.
func FuzzHubRegister(f *testing.F) {
	h := controllertest.Serve(f, embedded)
	cred, err := h.Admin().CreateHubCredential(f.Context(), "hub-b")
	if err != nil {
		f.Fatal(err)
	}
	in, err := h.Admin().CreateInstance(f.Context(), controller.CreateInstanceRequest{Name: "shop1"})
	if err != nil {
		f.Fatal(err)
	}
	f.Add([]byte(`{"public_key":"AQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAE=","endpoint":"198.18.0.2:4500"}`))
	f.Add([]byte(`{"public_key":"AQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAE=","endpoint":"[::ffff:198.18.0.3]:4500"}`))
	f.Add([]byte(`{"public_key":"AQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAE=","endpoint":"198.18.64.1:1"}`))
	f.Add([]byte(`{"public_key":"","endpoint":":0"}`))
	f.Add([]byte(`{"endpoint":123}`))
	handler := h.DeviceHandler()
	f.Fuzz(func(t *testing.T, body []byte) {
		req := httptest.NewRequest("POST", "/v1/hub/register", bytes.NewReader(body))
		req.RemoteAddr = "198.18.0.2:40000"
		req.Header.Set("Authorization", "Bearer "+cred.Credential)
		rec := httptest.NewRecorder()
		handler.ServeHTTP(rec, req)
		switch rec.Code {
		case http.StatusOK:
			var info api.HubInfo
			if err := json.Unmarshal(rec.Body.Bytes(), &info); err != nil {
				t.Fatalf("answer is not a HubInfo: %q", rec.Body.Bytes())
			}
			ep := info.Endpoint
			if info.Name != "hub-b" || info.PublicKey.IsZero() || !ep.Addr().Is4() || ep.Port() == 0 || controller.DefaultOverlay.Contains(ep.Addr()) ||
				!controller.DefaultOverlay.Contains(info.OverlayAddr) || info.OverlayAddr.String() == "198.18.64.1" {
				t.Fatalf("accepted %q as %+v", body, info)
			}
			for _, d := range in.Instance.Devices {
				if info.OverlayAddr == d.OverlayAddr {
					t.Fatalf("hub got device %s's overlay address %v", d.SN, info.OverlayAddr)
				}
			}
		case http.StatusBadRequest, http.StatusConflict:
			var e api.Error
			if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil || e.Code == "" || e.Message == "" {
				t.Fatalf("%d answer is not an api.Error: %q", rec.Code, rec.Body.Bytes())
			}
		default:
			t.Fatalf("answered %d: %s", rec.Code, rec.Body.Bytes())
		}
	})
}
