package diag

import (
	"math/rand/v2"
	"strconv"
	"sync"
	"testing"
	"time"

	"golang.zx2c4.com/wireguard/tun"

	"github.com/openvcpe/vcpe/internal/namespace"
)

// Impairments for the accuracy tests. With sch_netem in the kernel they are
// `tc netem` on the router's link toward the client, so they hit the
// replies. Kernels without netem (this project's CI VM has none) get the
// same impairments another real way: loss and duplication by nftables
// (numgen random, dup) in the router's forward path, and delay, jitter and
// reordering by a delay line, a TUN device in the router through which
// policy routing sends every reply, with a goroutine that writes each packet
// back after its own delay, like netem's time-sorted queue.

var (
	netemOnce sync.Once
	netemOK   bool
)

func haveNetem(t *testing.T) bool {
	netemOnce.Do(func() {
		ns := namespace.New(t)
		_, err := ns.Try("tc", "qdisc", "add", "dev", "lo", "root", "netem", "delay", "1ms")
		netemOK = err == nil
	})
	if !netemOK {
		t.Log("kernel has no sch_netem: impairing with nftables and a TUN delay line instead")
	}
	return netemOK
}

// impairLoss drops pct% of the replies crossing the router.
func impairLoss(t *testing.T, rt *namespace.NS, pct int) {
	if haveNetem(t) {
		rt.Run("tc", "qdisc", "add", "dev", "wan0", "root", "netem", "loss", itoa(pct)+"%")
		return
	}
	nft(t, rt, "add rule ip imp impair oifname wan0 numgen random mod 100 < "+itoa(pct)+" drop")
}

// impairDuplicate duplicates pct% of the replies crossing the router.
func impairDuplicate(t *testing.T, rt *namespace.NS, pct int) {
	nft(t, rt, "add rule ip imp impair oifname wan0 numgen random mod 100 < "+itoa(pct)+" dup to ip daddr device wan0")
}

func nft(t *testing.T, ns *namespace.NS, rule string) {
	t.Helper()
	if _, err := ns.Try("nft", "list", "table", "ip", "imp"); err != nil {
		ns.Run("nft", "add table ip imp; add chain ip imp impair { type filter hook forward priority 0; }")
	}
	ns.Run("nft", rule)
}

func itoa(n int) string { return strconv.Itoa(n) }

// delayLine delays every reply crossing the router (from lan0 toward the
// client) by delay(): a TUN device dly0, a policy rule sending packets that
// arrive on lan0 into it, and a pump writing each packet back after its
// delay, when the kernel forwards it on by the main table.
// lineLog records the delay the line really applied to each packet, in
// the order the packets left it: the ground truth the probes are checked
// against when the machine is too busy for the line to keep its schedule.
type lineLog struct {
	mu     sync.Mutex
	delays []time.Duration
}

// truth summarises the applied delays like Summarize does RTTs.
func (l *lineLog) truth() Stats {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := make([]Sample, len(l.delays))
	at := t0
	for i, d := range l.delays {
		at = at.Add(time.Millisecond) // release order is arrival order
		s[i] = Sample{Seq: i, Sent: at.Add(-d), Received: at, RTT: d}
	}
	return Summarize(s)
}

func delayLine(t *testing.T, rt *namespace.NS, delay func() time.Duration) *lineLog {
	t.Helper()
	var dev tun.Device
	var err error
	inNS(t, rt, func() { dev, err = tun.CreateTUN("dly0", 1500) })
	if err != nil {
		t.Fatalf("create delay-line TUN in %s: %v", rt.Name, err)
	}
	for _, k := range []string{"all", "default", "dly0", "lan0", "wan0"} {
		rt.Run("sysctl", "-qw", "net.ipv4.conf."+k+".rp_filter=0")
	}
	rt.Run("ip", "link", "set", "dly0", "up")
	rt.Run("ip", "route", "add", "default", "dev", "dly0", "table", "100")
	rt.Run("ip", "rule", "add", "iif", "lan0", "lookup", "100")

	const off = 16 // headroom for the virtio header wireguard-go's TUN uses
	var wmu sync.Mutex
	var wg sync.WaitGroup
	log := &lineLog{}
	done := make(chan struct{})
	t.Cleanup(func() {
		close(done)
		dev.Close()
		wg.Wait()
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		bufs := make([][]byte, dev.BatchSize())
		sizes := make([]int, len(bufs))
		for i := range bufs {
			bufs[i] = make([]byte, off+65535)
		}
		for {
			n, err := dev.Read(bufs, sizes, off)
			if err != nil {
				return
			}
			for i := range n {
				pkt := append(make([]byte, off), bufs[i][off:off+sizes[i]]...)
				read := time.Now()
				wg.Add(1)
				time.AfterFunc(delay(), func() {
					defer wg.Done()
					select {
					case <-done:
						return
					default:
					}
					wmu.Lock()
					_, _ = dev.Write([][]byte{pkt}, off)
					log.mu.Lock()
					log.delays = append(log.delays, time.Since(read))
					log.mu.Unlock()
					wmu.Unlock()
				})
			}
		}
	}()
	return log
}

// impairDelay delays replies by base ± jitter, uniformly (netem's
// distribution when none is named). With the delay line it returns the log
// of the delays really applied; with netem, nil.
func impairDelay(t *testing.T, rt *namespace.NS, base, jitter time.Duration) *lineLog {
	if haveNetem(t) {
		rt.Run("tc", "qdisc", "add", "dev", "wan0", "root", "netem", "delay", base.String(), jitter.String())
		return nil
	}
	return delayLine(t, rt, func() time.Duration {
		return base - jitter + time.Duration(rand.Int64N(int64(2*jitter)+1))
	})
}

// impairReorder sends pct% of the replies at once and delays the rest by
// delay (netem "delay D reorder P%").
func impairReorder(t *testing.T, rt *namespace.NS, delay time.Duration, pct int) {
	if haveNetem(t) {
		rt.Run("tc", "qdisc", "add", "dev", "wan0", "root", "netem", "delay", delay.String(), "reorder", itoa(pct)+"%")
		return
	}
	_ = delayLine(t, rt, func() time.Duration {
		if rand.IntN(100) < pct {
			return 0
		}
		return delay
	})
}
