package controller_test

import (
	"context"
	"errors"
	"net/netip"
	"testing"

	"github.com/openvcpe/vcpe/api"
	"github.com/openvcpe/vcpe/controller/controllertest"
)

// TestReachRefusesBadNonce goes through HTTPS; a bad request is refused
// before anything is sent. (Valid requests send packets to the requester,
// so they are tested in the lab, inside namespaces.)
func TestReachRefusesBadNonce(t *testing.T) {
	h := controllertest.Serve(t)
	c := h.Client(netip.MustParseAddr("198.18.0.11"))
	for _, n := range []string{"", "abc", "ABABABABABABABABABABABABABABABAB", "zzabababababababababababababababab"} {
		_, err := c.Reach(context.Background(), api.ReachRequest{Nonce: n})
		var ae *api.Error
		if !errors.As(err, &ae) || ae.Code != api.CodeInvalidInput || ae.Field != "nonce" {
			t.Errorf("Reach(nonce %q) = %v; want invalid_input naming the nonce", n, err)
		}
	}
}
