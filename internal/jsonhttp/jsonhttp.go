// Package jsonhttp is the one JSON-over-HTTP client call of the project: it
// encodes the request body, sends it, reads a bounded answer and decodes a
// 200 OK into the caller's value. What went wrong on the way is a
// *TransportError (no answer, or an answer that could not be read) or a
// *StatusError (an answer other than 200 OK, with its body); each caller
// turns those into its own errors with Client.Errors.
//
// It imports nothing of the project, so the device client and the
// controller's admin client can both sit on it.
package jsonhttp

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
)

// DefaultLimit bounds an answer when Client.Limit is zero.
const DefaultLimit = 4 << 20

// Client sends JSON requests to one base URL.
type Client struct {
	HTTP *http.Client
	// Base is prepended to every path, e.g. "https://198.18.0.1:8443".
	Base string
	// Header is sent with every request (for example Authorization).
	Header http.Header
	// Limit bounds the answer read, in bytes; 0 means DefaultLimit.
	Limit int64
	// Errors turns a *TransportError or *StatusError into the caller's
	// error; nil returns them as they are.
	Errors func(error) error
}

// TransportError means no answer arrived, or it could not be read.
type TransportError struct {
	Method, Path string
	Err          error
}

func (e *TransportError) Error() string {
	return fmt.Sprintf("%s %s: %v", e.Method, e.Path, e.Err)
}

func (e *TransportError) Unwrap() error { return e.Err }

// StatusError is an answer other than 200 OK.
type StatusError struct {
	Method, Path string
	// Status is the status line, e.g. "404 Not Found".
	Status string
	Code   int
	Body   []byte
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("answered %s to %s %s", e.Status, e.Method, e.Path)
}

// Decode reads the answer's body as JSON into v and reports whether it
// could.
func (e *StatusError) Decode(v any) bool { return json.Unmarshal(e.Body, v) == nil }

// Do sends body (nil for none) as JSON with method to Base+path and decodes
// a 200 OK answer into out (nil to ignore it).
func (c *Client) Do(ctx context.Context, method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return fmt.Errorf("encode request to %s %s: %w", method, path, err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.Base+path, rd)
	if err != nil {
		return fmt.Errorf("make request %s %s: %w", method, path, err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range c.Header {
		req.Header[k] = v
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return c.fail(&TransportError{Method: method, Path: path, Err: err})
	}
	defer resp.Body.Close()
	limit := c.Limit
	if limit == 0 {
		limit = DefaultLimit
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, limit))
	if err != nil {
		return c.fail(&TransportError{Method: method, Path: path, Err: err})
	}
	if resp.StatusCode != http.StatusOK {
		return c.fail(&StatusError{Method: method, Path: path, Status: resp.Status, Code: resp.StatusCode, Body: b})
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(b, out); err != nil {
		return fmt.Errorf("decode answer to %s %s: %w", method, path, err)
	}
	return nil
}

func (c *Client) fail(err error) error {
	if c.Errors == nil {
		return err
	}
	return c.Errors(err)
}
