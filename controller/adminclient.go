package controller

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"path/filepath"
	"syscall"

	"github.com/openvcpe/vcpe/api"
	"github.com/openvcpe/vcpe/internal/jsonhttp"
)

// AdminClient talks to a running controller over its admin socket.
type AdminClient struct {
	path string
	json jsonhttp.Client
}

// NewAdminClient returns a client for the controller whose state is in dir.
func NewAdminClient(dir string) *AdminClient {
	path := filepath.Join(dir, AdminSocket)
	c := &AdminClient{path: path}
	c.json = jsonhttp.Client{
		HTTP: &http.Client{Transport: &http.Transport{
			DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
				var d net.Dialer
				return d.DialContext(ctx, "unix", path)
			},
		}},
		Base:   "http://vcpe-hub",
		Limit:  64 << 20,
		Errors: c.adminError,
	}
	return c
}

func (c *AdminClient) do(ctx context.Context, method, path string, body, out any) error {
	return c.json.Do(ctx, method, path, body, out)
}

// adminError names the fix when the socket does not answer, and returns
// the controller's *api.Error when it refused.
func (c *AdminClient) adminError(err error) error {
	var te *jsonhttp.TransportError
	if errors.As(err, &te) {
		if errors.Is(err, syscall.ENOENT) || errors.Is(err, syscall.ECONNREFUSED) {
			return fmt.Errorf("no controller answers on %s: start it with vcpe-hub serve --state %s (or pass the right --state)", c.path, filepath.Dir(c.path))
		}
		if errors.Is(err, syscall.EACCES) {
			return fmt.Errorf("admin socket %s: permission denied: run as root", c.path)
		}
		return fmt.Errorf("admin request to %s: %w", c.path, te.Err)
	}
	var se *jsonhttp.StatusError
	if errors.As(err, &se) {
		var ae api.Error
		if se.Decode(&ae) && ae.Code != "" {
			return &ae
		}
		return fmt.Errorf("admin API answered %s", se.Status)
	}
	return err
}

// CreateInstance makes an instance; the answer holds each slot's SN and key.
func (c *AdminClient) CreateInstance(ctx context.Context, req CreateInstanceRequest) (*CreatedInstance, error) {
	var out CreatedInstance
	return &out, c.do(ctx, http.MethodPost, "/admin/v1/instances", req, &out)
}

// ListInstances lists instances.
func (c *AdminClient) ListInstances(ctx context.Context) ([]InstanceInfo, error) {
	var out []InstanceInfo
	return out, c.do(ctx, http.MethodGet, "/admin/v1/instances", nil, &out)
}

// ShowInstance shows one instance by name or ID.
func (c *AdminClient) ShowInstance(ctx context.Context, ref string) (InstanceInfo, error) {
	var out InstanceInfo
	return out, c.do(ctx, http.MethodGet, "/admin/v1/instances/"+url.PathEscape(ref), nil, &out)
}

// DeleteInstance deletes an instance by name or ID.
func (c *AdminClient) DeleteInstance(ctx context.Context, ref string) error {
	return c.do(ctx, http.MethodDelete, "/admin/v1/instances/"+url.PathEscape(ref), nil, nil)
}

// ListDevices lists device slots.
func (c *AdminClient) ListDevices(ctx context.Context) ([]DeviceInfo, error) {
	var out []DeviceInfo
	return out, c.do(ctx, http.MethodGet, "/admin/v1/devices", nil, &out)
}

// ResetKey issues a new key for sn.
func (c *AdminClient) ResetKey(ctx context.Context, sn string) (*IssuedDevice, error) {
	var out IssuedDevice
	return &out, c.do(ctx, http.MethodPost, "/admin/v1/devices/"+url.PathEscape(sn)+"/reset-key", nil, &out)
}

// Revoke revokes sn.
func (c *AdminClient) Revoke(ctx context.Context, sn string) error {
	return c.do(ctx, http.MethodPost, "/admin/v1/devices/"+url.PathEscape(sn)+"/revoke", nil, nil)
}

// CreateCCN makes a CCN.
func (c *AdminClient) CreateCCN(ctx context.Context, name string) (CCNInfo, error) {
	var out CCNInfo
	return out, c.do(ctx, http.MethodPost, "/admin/v1/ccns", map[string]string{"name": name}, &out)
}

// ListCCNs lists CCNs.
func (c *AdminClient) ListCCNs(ctx context.Context) ([]CCNInfo, error) {
	var out []CCNInfo
	return out, c.do(ctx, http.MethodGet, "/admin/v1/ccns", nil, &out)
}

// Attach puts an instance into a CCN.
func (c *AdminClient) Attach(ctx context.Context, ccn, instance string) (CCNInfo, error) {
	var out CCNInfo
	return out, c.do(ctx, http.MethodPost, "/admin/v1/ccns/"+url.PathEscape(ccn)+"/attach", map[string]string{"instance": instance}, &out)
}

// Detach takes an instance out of a CCN.
func (c *AdminClient) Detach(ctx context.Context, ccn, instance string) (CCNInfo, error) {
	var out CCNInfo
	return out, c.do(ctx, http.MethodPost, "/admin/v1/ccns/"+url.PathEscape(ccn)+"/detach", map[string]string{"instance": instance}, &out)
}

// Routes reports advertised prefixes and who learns them.
func (c *AdminClient) Routes(ctx context.Context, ccn string) (RoutesReport, error) {
	var out RoutesReport
	q := ""
	if ccn != "" {
		q = "?ccn=" + url.QueryEscape(ccn)
	}
	return out, c.do(ctx, http.MethodGet, "/admin/v1/routes"+q, nil, &out)
}

// CreateHubCredential issues the credential of the hub process name
// (shown once).
func (c *AdminClient) CreateHubCredential(ctx context.Context, name string) (*HubCredential, error) {
	var out HubCredential
	return &out, c.do(ctx, http.MethodPost, "/admin/v1/hubs", map[string]string{"name": name}, &out)
}

// Audit returns the last n audit entries.
func (c *AdminClient) Audit(ctx context.Context, n int) ([]AuditEntry, error) {
	var out []AuditEntry
	return out, c.do(ctx, http.MethodGet, fmt.Sprintf("/admin/v1/audit?last=%d", n), nil, &out)
}

// SetHubsRequest is the body of instance hubs: the primary hub and,
// optionally, the secondary (empty: the default).
type SetHubsRequest struct {
	Primary   string `json:"primary"`
	Secondary string `json:"secondary,omitempty"`
}

// SetInstanceHubs assigns an instance (name or ID) to its hubs.
func (c *AdminClient) SetInstanceHubs(ctx context.Context, ref, primary, secondary string) (InstanceInfo, error) {
	var out InstanceInfo
	return out, c.do(ctx, http.MethodPost, "/admin/v1/instances/"+url.PathEscape(ref)+"/hubs", SetHubsRequest{Primary: primary, Secondary: secondary}, &out)
}

// ListHubs lists the hub group with each hub's device counts.
func (c *AdminClient) ListHubs(ctx context.Context) ([]HubEntry, error) {
	var out []HubEntry
	return out, c.do(ctx, http.MethodGet, "/admin/v1/hubs", nil, &out)
}

// RemoveHub takes a registered hub out of the group.
func (c *AdminClient) RemoveHub(ctx context.Context, name string) error {
	return c.do(ctx, http.MethodDelete, "/admin/v1/hubs/"+url.PathEscape(name), nil, nil)
}
