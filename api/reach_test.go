package api

import (
	"strings"
	"testing"
)

func TestParseReachRequest(t *testing.T) {
	good := strings.Repeat("ab", 16)
	if r, err := ParseReachRequest([]byte(`{"nonce":"` + good + `"}`)); err != nil || r.Nonce != good {
		t.Fatalf("ParseReachRequest(good) = %+v, %v", r, err)
	}
	for _, bad := range []string{``, `{}`, `{"nonce":"` + strings.Repeat("AB", 16) + `"}`, `{"nonce":"` + good + `0"}`, `{"nonce":"zz` + good[2:] + `"}`, `[1]`} {
		if _, err := ParseReachRequest([]byte(bad)); err == nil {
			t.Errorf("ParseReachRequest(%s) accepted", bad)
		}
	}
	p := ReachPayload(good)
	if !IsReachPayload(p, good) || IsReachPayload(p, strings.Repeat("cd", 16)) || len(p) >= len(`{"nonce":"`+good+`"}`) {
		t.Errorf("payload %q: want recognised for its nonce only, and smaller than the request", p)
	}
}

func FuzzParseReachRequest(f *testing.F) {
	f.Add([]byte(`{"nonce":"` + strings.Repeat("ab", 16) + `"}`))
	f.Add([]byte(`{"nonce":1}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := ParseReachRequest(b)
		if err != nil {
			return
		}
		if len(r.Nonce) != ReachNonceLen || CheckReachNonce(r.Nonce) != nil {
			t.Fatalf("accepted nonce %q", r.Nonce)
		}
		if len(ReachPayload(r.Nonce)) > len(b) {
			t.Fatalf("payload larger than request %q", b)
		}
	})
}
