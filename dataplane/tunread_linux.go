package dataplane

import (
	"errors"
	"syscall"

	"golang.org/x/sys/unix"
	"golang.zx2c4.com/wireguard/tun"
)

// drainTUN makes each read of the TUN return a burst instead of one packet.
//
// wireguard-go asks the TUN for up to a batch of packets at a time and then
// encrypts and sends the whole batch together: one hand-off to the
// encryption workers, one sendmmsg with UDP GSO. Its Linux TUN returns one
// read(2) per call, which is one packet for anything the kernel did not
// segment-offload (UDP, ICMP, small TCP). At high packet rates the sending
// end then pays the whole pipeline per packet, the TUN's transmit queue
// overflows in bursts (tx_dropped), and the lossless UDP rate is set by
// that rather than by the CPU.
//
// drainTUN keeps wireguard-go's blocking read for the first packet, then
// takes whatever else is already queued (a zero-timeout poll says so)
// until the caller's batch is full. The extra reads go through the
// upstream TUN code into a private batch, so offloaded (GSO) packets are
// split exactly as upstream splits them, never into a caller's batch too
// small for them; packets that do not fit wait for the next call.
type drainTUN struct {
	tun.Device
	sc syscall.RawConn
	// tx counts the packets read (taken in), rx the packets written
	// (handed on); see inflight.
	tx, rx *inflight

	scratch   [][]byte
	sizes     []int
	offset    int // the offset scratch was filled with
	next, end int // scratch[next:end] wait for the next Read
	err       error

	// The zero-timeout poll of queued, kept here so that it allocates
	// nothing per call.
	pfd   [1]unix.PollFd
	ready bool
	poll  func(fd uintptr)
}

// newDrainTUN wraps d, with the bounds tx and rx (nil: none). It returns d
// itself when d has no file to poll.
func newDrainTUN(d tun.Device, tx, rx *inflight) tun.Device {
	f := d.File()
	if f == nil {
		return d
	}
	sc, err := f.SyscallConn()
	if err != nil {
		return d
	}
	t := &drainTUN{Device: d, sc: sc, tx: tx, rx: rx}
	t.poll = t.pollOnce
	return t
}

// Read fills bufs with packets: the ones left from the last call, else one
// blocking read, then every packet already queued that fits. While more
// than tx's bound are inside wireguard-go it first waits.
func (t *drainTUN) Read(bufs [][]byte, sizes []int, offset int) (int, error) {
	t.tx.wait()
	n := t.take(bufs, sizes, offset)
	if n == 0 {
		if err := t.err; err != nil {
			t.err = nil
			return 0, err
		}
		m, err := t.Device.Read(bufs, sizes, offset)
		if err != nil || m == 0 {
			return m, err
		}
		n = m
	}
	for n < len(bufs) && int64(n) < t.tx.room() && t.err == nil && t.queued() {
		t.fill(len(bufs[0]), offset)
		n += t.take(bufs[n:], sizes[n:], offset)
	}
	t.tx.in(n)
	if n > 0 && t.err != nil && errors.Is(t.err, tun.ErrTooManySegments) {
		// wireguard-go logs and carries on; hand it over with the packets.
		err := t.err
		t.err = nil
		return n, err
	}
	return n, nil
}

// Write writes packets to the TUN and counts them handed on.
func (t *drainTUN) Write(bufs [][]byte, offset int) (int, error) {
	n, err := t.Device.Write(bufs, offset)
	t.rx.out(len(bufs))
	return n, err
}

// queued says whether a read would return at once.
func (t *drainTUN) queued() bool {
	t.ready = false
	t.sc.Control(t.poll)
	return t.ready
}

func (t *drainTUN) pollOnce(fd uintptr) {
	t.pfd[0] = unix.PollFd{Fd: int32(fd), Events: unix.POLLIN}
	for {
		n, err := unix.Poll(t.pfd[:], 0)
		if err == unix.EINTR {
			continue
		}
		t.ready = err == nil && n > 0 && t.pfd[0].Revents&unix.POLLIN != 0
		return
	}
}

// fill reads one TUN read's worth of packets into the private batch. An
// error is kept for the caller.
func (t *drainTUN) fill(size, offset int) {
	batch := t.Device.BatchSize()
	if len(t.scratch) != batch || cap(t.scratch[0]) < size {
		t.scratch = make([][]byte, batch)
		for i := range t.scratch {
			t.scratch[i] = make([]byte, size)
		}
		t.sizes = make([]int, batch)
	}
	for i := range t.scratch {
		t.scratch[i] = t.scratch[i][:size]
	}
	n, err := t.Device.Read(t.scratch, t.sizes, offset)
	t.offset, t.next, t.end = offset, 0, n
	t.err = err
}

// take copies waiting packets into bufs and returns how many.
func (t *drainTUN) take(bufs [][]byte, sizes []int, offset int) int {
	n := 0
	for ; t.next < t.end && n < len(bufs); t.next++ {
		pkt := t.scratch[t.next][t.offset : t.offset+t.sizes[t.next]]
		sizes[n] = copy(bufs[n][offset:], pkt)
		n++
	}
	return n
}
