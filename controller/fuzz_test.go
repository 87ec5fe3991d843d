package controller_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/openvcpe/vcpe/api"
	"github.com/openvcpe/vcpe/controller/controllertest"
)

// FuzzDeviceAPI feeds arbitrary bodies and credentials to every device API
// call: the answer is always a well-formed document with a known status.
func FuzzDeviceAPI(f *testing.F) {
	h := controllertest.Serve(f)
	f.Add(0, []byte(`{"sn":"VC0000","nonce":"x","public_key":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=","advertise":["198.19.1.0/24"],"proof":"AAAA"}`), "")
	f.Add(1, []byte(`{"sn":"VC0000"}`), "")
	f.Add(2, []byte(`{"advertise":["198.19.1.0/33"]}`), "vcd_x")
	f.Add(3, []byte(`{"advertise":["10.0.0.0/8","::/0"]}`), "Bearer")
	f.Add(0, []byte(`{"advertise":"nope","proof":123}`), "")
	handler := h.DeviceHandler()
	paths := []struct{ method, path string }{
		{"POST", "/v1/register"}, {"POST", "/v1/register/challenge"}, {"POST", "/v1/device/routes"}, {"GET", "/v1/device/config"}, {"POST", "/v1/device/release"},
	}
	f.Fuzz(func(t *testing.T, which int, body []byte, cred string) {
		p := paths[uint(which)%uint(len(paths))]
		req := httptest.NewRequest(p.method, p.path, bytes.NewReader(body))
		req.RemoteAddr = "198.18.0.11:40000"
		req.Header.Set("Authorization", "Bearer "+cred)
		rec := httptest.NewRecorder()
		handler.ServeHTTP(rec, req)
		switch rec.Code {
		case http.StatusOK:
			if p.path != "/v1/register/challenge" {
				t.Fatalf("%s %s accepted fuzz input %q", p.method, p.path, body)
			}
		case http.StatusBadRequest, http.StatusUnauthorized, http.StatusTooManyRequests, http.StatusConflict:
			var e api.Error
			if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil || e.Code == "" || e.Message == "" {
				t.Fatalf("%d answer is not an api.Error: %q", rec.Code, rec.Body.Bytes())
			}
		default:
			t.Fatalf("%s %s answered %d: %s", p.method, p.path, rec.Code, rec.Body.Bytes())
		}
	})
}
