package diag

import (
	"bytes"
	"errors"
	"testing"
	"time"
)

func TestProbeCodec(t *testing.T) {
	sent := time.Unix(0, 1_700_000_000_123_456_789)
	for _, p := range []Probe{
		{Kind: KindRequest, Seq: 0, Sent: sent, Len: ProbeHeaderLen},
		{Kind: KindReply, Seq: 1<<32 - 1, Sent: sent, Len: 1000},
		{Kind: KindRequest, Seq: 7, Len: 56}, // zero time
	} {
		b := AppendProbe(nil, p)
		if len(b) != p.Len {
			t.Fatalf("AppendProbe(%+v): %d bytes; want %d", p, len(b), p.Len)
		}
		got, err := DecodeProbe(b)
		if err != nil {
			t.Fatalf("DecodeProbe(AppendProbe(%+v)): %v", p, err)
		}
		if got.Kind != p.Kind || got.Seq != p.Seq || !got.Sent.Equal(p.Sent) || got.Len != p.Len {
			t.Errorf("round trip: got %+v; want %+v", got, p)
		}
	}
	// The wire layout is part of the protocol: pin it.
	want := []byte("vcpr\x01\x01\x00\x00\x00\x00\x00\x2a\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00")
	if got := AppendProbe(nil, Probe{Kind: KindRequest, Seq: 42, Len: 22}); !bytes.Equal(got, want) {
		t.Errorf("wire form = % x; want % x", got, want)
	}
	if got := AppendProbe(nil, Probe{Kind: KindRequest, Len: 3}); len(got) != ProbeHeaderLen {
		t.Errorf("short Len: %d bytes; want the %d-byte header", len(got), ProbeHeaderLen)
	}
}

func TestDecodeProbeMalformed(t *testing.T) {
	good := AppendProbe(nil, Probe{Kind: KindRequest, Seq: 1, Len: 40})
	mod := func(i int, v byte) []byte { b := bytes.Clone(good); b[i] = v; return b }
	for name, b := range map[string][]byte{
		"empty":        nil,
		"short":        good[:ProbeHeaderLen-1],
		"bad magic":    mod(0, 'X'),
		"version 2":    mod(4, 2),
		"kind 0":       mod(5, 0),
		"kind 3":       mod(5, 3),
		"reserved set": mod(7, 1),
	} {
		if _, err := DecodeProbe(b); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: DecodeProbe = %v; want ErrMalformed", name, err)
		}
	}
}

func FuzzDecodeProbe(f *testing.F) {
	f.Add(AppendProbe(nil, Probe{Kind: KindRequest, Seq: 1, Sent: time.Unix(1, 2), Len: 64}))
	f.Add(AppendProbe(nil, Probe{Kind: KindReply, Seq: 9, Len: 20}))
	f.Add([]byte("vcpr"))
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := DecodeProbe(b)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v is not ErrMalformed", err)
			}
			return
		}
		if p.Len != len(b) {
			t.Fatalf("Len %d for %d bytes", p.Len, len(b))
		}
		// Re-encoding gives the same header.
		again := AppendProbe(nil, p)
		if !bytes.Equal(again[:ProbeHeaderLen], b[:ProbeHeaderLen]) {
			t.Fatalf("re-encoded header % x; input % x", again[:ProbeHeaderLen], b[:ProbeHeaderLen])
		}
	})
}
