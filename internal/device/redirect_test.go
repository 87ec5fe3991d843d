package device_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/openvcpe/vcpe/controller"
	"github.com/openvcpe/vcpe/internal/device"
)

// pipeListener hands the server the far ends of in-memory pipes: no port
// is opened.
type pipeListener struct {
	ch   chan net.Conn
	once sync.Once
}

func (l *pipeListener) Accept() (net.Conn, error) {
	c, ok := <-l.ch
	if !ok {
		return nil, net.ErrClosed
	}
	return c, nil
}
func (l *pipeListener) Close() error   { l.once.Do(func() { close(l.ch) }); return nil }
func (l *pipeListener) Addr() net.Addr { return &net.TCPAddr{} }

// TestClientRefusesRedirects: a controller (or something in its place
// with the pinned certificate) answering with a redirect, even to http://,
// never gets the device credential sent anywhere else.
func TestClientRefusesRedirects(t *testing.T) {
	var leaked atomic.Int32
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/steal" {
			leaked.Add(1)
		}
		http.Redirect(w, r, "http://controller.test/steal", http.StatusFound)
	}))
	ln := &pipeListener{ch: make(chan net.Conn, 4)}
	srv.Listener = ln
	srv.StartTLS()
	defer srv.Close()
	var dials atomic.Int32
	opts := device.ClientOptions{Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
		dials.Add(1)
		a, b := net.Pipe()
		ln.ch <- b
		return a, nil
	}}
	st := &device.State{Controller: "https://controller.test:8443", ControllerFingerprint: controller.Fingerprint(srv.Certificate()), Credential: "vcd_secret"}
	c, err := device.NewClientFromState(st, opts)
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.DeviceConfig(context.Background())
	if err == nil || !strings.Contains(err.Error(), "redirect") {
		t.Fatalf("config through a redirect: %v; want a refusal naming the redirect", err)
	}
	var ue *device.UnreachableError
	_ = errors.As(err, &ue)
	if leaked.Load() != 0 || dials.Load() != 1 {
		t.Errorf("redirect followed: %d requests to the target, %d dials; want 0 and 1", leaked.Load(), dials.Load())
	}
}
