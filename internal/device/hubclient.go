package device

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/openvcpe/vcpe/api"
)

// NewHubClient returns a client for a hub process (vcpe-hub serve --role
// hub): the controller at urls (its replicas, tried in turn), pinned to
// the CA fingerprint, authenticated with a hub credential.
func NewHubClient(urls []string, fingerprint, credential string, opts ClientOptions) (*Client, error) {
	if len(urls) == 0 {
		return nil, &api.InputError{Field: "--controller", Msg: "no controller URL: pass --controller https://HOST:8443 (repeatable)"}
	}
	c, err := NewClient(urls[0], fingerprint, opts)
	if err != nil {
		return nil, err
	}
	if err := c.AddControllers(urls[1:]...); err != nil {
		return nil, err
	}
	c.setCredential(credential)
	return c, nil
}

// HubConfig long-polls the hub's configuration: the answer comes as soon as
// its generation is not gen, or after wait (at most 25 s) unchanged; wait
// 0 answers at once.
func (c *Client) HubConfig(ctx context.Context, gen uint64, wait time.Duration) (api.HubConfig, error) {
	var hc api.HubConfig
	if wait <= 0 {
		return hc, c.do(ctx, http.MethodGet, "/v1/hub/config", nil, &hc)
	}
	secs := max(1, int(wait/time.Second))
	ctx, cancel := context.WithTimeout(ctx, time.Duration(secs)*time.Second+15*time.Second)
	defer cancel()
	return hc, c.doWith(ctx, c.long, http.MethodGet, fmt.Sprintf("/v1/hub/config?wait=%d&timeout=%d", gen, secs), nil, &hc)
}

// RegisterHub announces the hub's own WireGuard public key and endpoint
// (hub groups); the answer is what the controller recorded, with the
// overlay address it allocated.
func (c *Client) RegisterHub(ctx context.Context, r api.HubRegister) (api.HubInfo, error) {
	var info api.HubInfo
	return info, c.do(ctx, http.MethodPost, "/v1/hub/register", r, &info)
}

// HubIdentity fetches the controller's hub WireGuard private key (hubs
// that do not register a key of their own).
func (c *Client) HubIdentity(ctx context.Context) (api.HubIdentity, error) {
	var id api.HubIdentity
	return id, c.do(ctx, http.MethodGet, "/v1/hub/identity", nil, &id)
}

// ReportActive tells the controller the hub's arbiter switched an
// instance's active device.
func (c *Client) ReportActive(ctx context.Context, a api.HubActive) error {
	return c.do(ctx, http.MethodPost, "/v1/hub/active", a, nil)
}
