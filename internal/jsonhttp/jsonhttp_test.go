package jsonhttp

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// handlerTransport serves requests with a handler in memory: no socket.
type handlerTransport struct{ h http.Handler }

func (t handlerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.URL.Host == "unreachable.test" {
		return nil, errors.New("dial: no route")
	}
	w := httptest.NewRecorder()
	t.h.ServeHTTP(w, r)
	return w.Result(), nil
}

func TestDo(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/echo":
			if r.Header.Get("Content-Type") != "application/json" || r.Header.Get("Authorization") != "Bearer t" {
				http.Error(w, "headers", http.StatusBadRequest)
				return
			}
			b, _ := io.ReadAll(r.Body)
			w.Write(b)
		case "/refuse":
			w.WriteHeader(http.StatusConflict)
			fmt.Fprint(w, `{"code":"slot_taken"}`)
		case "/garbage":
			fmt.Fprint(w, `not json`)
		}
	})
	c := &Client{HTTP: &http.Client{Transport: handlerTransport{h}}, Base: "http://controller.test", Header: http.Header{"Authorization": {"Bearer t"}}}
	ctx := context.Background()

	var out struct{ A int }
	if err := c.Do(ctx, http.MethodPost, "/echo", map[string]int{"A": 7}, &out); err != nil || out.A != 7 {
		t.Fatalf("echo: %+v, %v; want A=7", out, err)
	}

	err := c.Do(ctx, http.MethodGet, "/refuse", nil, nil)
	var se *StatusError
	if !errors.As(err, &se) || se.Code != http.StatusConflict || se.Method != "GET" || se.Path != "/refuse" {
		t.Fatalf("refuse: %v; want a *StatusError 409 for GET /refuse", err)
	}
	var body struct{ Code string }
	if !se.Decode(&body) || body.Code != "slot_taken" {
		t.Errorf("refusal body %+v; want code slot_taken", body)
	}

	if err := c.Do(ctx, http.MethodGet, "/garbage", nil, &out); err == nil || !strings.Contains(err.Error(), "decode answer to GET /garbage") {
		t.Errorf("garbage: %v; want a decode error naming the call", err)
	}

	mapped := errors.New("mapped")
	c.Errors = func(err error) error {
		var te *TransportError
		if !errors.As(err, &te) {
			t.Errorf("Errors got %T; want *TransportError", err)
		}
		return mapped
	}
	c.Base = "http://unreachable.test"
	if err := c.Do(ctx, http.MethodGet, "/", nil, nil); !errors.Is(err, mapped) {
		t.Errorf("unreachable: %v; want the caller's mapping", err)
	}
}
