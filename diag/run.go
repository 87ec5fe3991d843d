package diag

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"sync"
	"time"
)

// Options control a probe run. Zero values take the defaults given.
type Options struct {
	Count    int           // probes to send (default 5, at most MaxCount)
	Interval time.Duration // between probes (default 1s)
	Timeout  time.Duration // how long to wait for the last reply (default 2s)
	// Size is the whole IP packet in bytes (IP and ICMP/UDP headers
	// included), so it compares directly with an MTU. Default 84, like ping.
	Size int
	// DF sets Don't Fragment (IP_MTU_DISCOVER=IP_PMTUDISC_DO): a probe larger
	// than the path MTU comes back as "fragmentation needed" instead of
	// being fragmented.
	DF     bool
	TTL    int        // IP TTL (0: system default)
	Source netip.Addr // source address to bind (zero: chosen by the route)
	// ICMPMode chooses the ICMP socket: ICMPAuto (raw if allowed, else
	// unprivileged), ICMPRaw or ICMPUnprivileged.
	ICMPMode ICMPMode
	// OnSample, when set, is called for every reply, duplicate and ICMP
	// error as it arrives, and for every lost probe at the end.
	OnSample func(Sample)
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// MaxCount is the most probes one run sends (ICMP sequence numbers are 16 bits).
const MaxCount = 65535

// ICMPMode selects the kind of ICMP socket.
type ICMPMode int

const (
	ICMPAuto         ICMPMode = iota // raw as root, unprivileged otherwise
	ICMPRaw                          // SOCK_RAW: needs root or CAP_NET_RAW
	ICMPUnprivileged                 // SOCK_DGRAM ICMP: needs net.ipv4.ping_group_range
)

func (o Options) withDefaults() (Options, error) {
	if o.Count == 0 {
		o.Count = 5
	}
	if o.Count < 0 || o.Count > MaxCount {
		return o, fmt.Errorf("count %d: must be between 1 and %d", o.Count, MaxCount)
	}
	if o.Interval == 0 {
		o.Interval = time.Second
	}
	if o.Interval < 0 {
		return o, fmt.Errorf("interval %v: must be positive", o.Interval)
	}
	if o.Timeout == 0 {
		o.Timeout = 2 * time.Second
	}
	if o.Size == 0 {
		o.Size = 84
	}
	if o.TTL < 0 || o.TTL > 255 {
		return o, fmt.Errorf("ttl %d: must be between 1 and 255", o.TTL)
	}
	if o.Source.IsValid() && !o.Source.Unmap().Is4() {
		return o, fmt.Errorf("source %s: only IPv4 is supported", o.Source)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return o, nil
}

// Result is one probe run: what was sent where, every sample and the
// summary.
type Result struct {
	Protocol string     `json:"protocol"` // "icmp" or "udp"
	Target   netip.Addr `json:"target"`
	Port     uint16     `json:"port,omitempty"` // UDP only
	Size     int        `json:"size"`
	DF       bool       `json:"df"`
	Samples  []Sample   `json:"samples"`
	Stats    Stats      `json:"stats"`
}

// event is what a transport reads: a reply or an ICMP error for one seq.
type event struct {
	seq  int
	at   time.Time
	from netip.Addr
	size int
	icmp *ICMPError
}

// echoConn is the transport under a probe run: ICMP echo or UDP to a
// reflector, real or fake.
type echoConn interface {
	// send sends probe seq of size bytes (whole IP packet).
	send(seq, size int) error
	// recv returns the next event for this run, or an error wrapping
	// os.ErrDeadlineExceeded when nothing came before deadline. It skips
	// packets that are not for this run.
	recv(deadline time.Time) (event, error)
	close() error
}

// run sends o.Count probes over c and collects the samples.
func run(ctx context.Context, c echoConn, o Options) ([]Sample, error) {
	var (
		mu      sync.Mutex
		prim    = make([]Sample, 0, o.Count)
		dups    []Sample
		pending int // probes sent and not answered
		changed = make(chan struct{}, 1)
	)
	notify := func() {
		select {
		case changed <- struct{}{}:
		default:
		}
	}
	stop := make(chan struct{})
	recvDone := make(chan struct{})
	var recvErr error
	go func() {
		defer close(recvDone)
		for {
			select {
			case <-stop:
				return
			default:
			}
			ev, err := c.recv(time.Now().Add(50 * time.Millisecond))
			if errors.Is(err, os.ErrDeadlineExceeded) {
				continue
			}
			if err != nil {
				recvErr = fmt.Errorf("receive: %w", err)
				return
			}
			mu.Lock()
			if ev.seq < 0 || ev.seq >= len(prim) {
				mu.Unlock()
				continue
			}
			p := &prim[ev.seq]
			if p.SendError != "" {
				mu.Unlock()
				continue // not sent: whatever claims to answer it is not ours
			}
			s := Sample{Seq: ev.seq, Sent: p.Sent, Received: ev.at, RTT: ev.at.Sub(p.Sent), Size: ev.size, From: ev.from, ICMP: ev.icmp}
			if p.Received.IsZero() {
				*p = s
				pending--
			} else if ev.icmp == nil {
				s.Duplicate = true
				dups = append(dups, s)
			} else {
				mu.Unlock()
				continue
			}
			mu.Unlock()
			if o.OnSample != nil {
				o.OnSample(s)
			}
			notify()
		}
	}()
	finish := func() ([]Sample, error) {
		close(stop)
		<-recvDone
		err := recvErr
		mu.Lock()
		defer mu.Unlock()
		if o.OnSample != nil {
			for _, p := range prim {
				if p.Status() == "lost" {
					o.OnSample(p)
				}
			}
		}
		return append(prim, dups...), err
	}

	tick := time.NewTicker(o.Interval)
	defer tick.Stop()
	for i := 0; i < o.Count; i++ {
		mu.Lock()
		prim = append(prim, Sample{Seq: i, Sent: o.Now(), Size: o.Size})
		pending++
		mu.Unlock()
		if err := c.send(i, o.Size); err != nil {
			mu.Lock()
			prim[i].SendError = err.Error()
			pending--
			s := prim[i]
			mu.Unlock()
			if o.OnSample != nil {
				o.OnSample(s)
			}
		}
		if i == o.Count-1 {
			break
		}
		select {
		case <-ctx.Done():
			return finish()
		case <-recvDone:
			return finish()
		case <-tick.C:
		}
	}
	wait := time.NewTimer(o.Timeout)
	defer wait.Stop()
	for {
		mu.Lock()
		done := pending == 0
		mu.Unlock()
		if done {
			// Give duplicates of the last reply a moment to show up.
			select {
			case <-ctx.Done():
			case <-time.After(min(o.Interval, 20*time.Millisecond)):
			}
			return finish()
		}
		select {
		case <-ctx.Done():
			return finish()
		case <-wait.C:
			return finish()
		case <-recvDone:
			return finish()
		case <-changed:
		}
	}
}
