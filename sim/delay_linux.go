//go:build linux

package sim

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// delayer holds every packet of one network namespace that an iptables
// NFQUEUE rule hands it for a fixed time, then lets it go: the one-way
// latency of a container's access link, as netem would add it, where
// netem is not built into the kernel. Every packet waits the same time,
// so they leave in the order they came and one batch verdict ("accept
// all up to id") lets go of all that are due.
type delayer struct {
	f       *os.File
	queue   uint16
	delay   time.Duration
	pending chan queuedPacket
	done    chan struct{}
	wg      sync.WaitGroup

	mu   sync.Mutex
	err  error // the first failure to read or answer, for the run's log
	late lateness
}

// lateness is how much longer than the link's latency packets were
// held: the delayer runs in the runner's process, and on a busy machine
// its timer fires late. A plan's latency is only what it says when this
// stays small.
type lateness struct {
	packets int64
	sum     time.Duration
	max     time.Duration
}

func (l *lateness) add(d time.Duration) {
	l.packets++
	l.sum += d
	l.max = max(l.max, d)
}

type queuedPacket struct {
	id uint32
	at time.Time
}

// delayQueueLen is how many packets the kernel may hold for a delayer:
// far above a link's bandwidth × delay at the rates plans use.
const delayQueueLen = 8192

// openDelayer binds queue number queue in the network namespace of
// process pid and starts delaying what it receives by delay.
func openDelayer(pid int, queue uint16, delay time.Duration) (*delayer, error) {
	fd, err := netlinkInNetns(pid)
	if err != nil {
		return nil, fmt.Errorf("opening an nfnetlink queue socket in the network namespace of pid %d: %w", pid, err)
	}
	// Packets of a fast link arrive in bursts; a small buffer overflows
	// (ENOBUFS), which costs nothing but the batching below.
	_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, 4<<20)
	f := os.NewFile(uintptr(fd), fmt.Sprintf("nfqueue-%d", pid))
	d := &delayer{f: f, queue: queue, delay: delay, pending: make(chan queuedPacket, delayQueueLen), done: make(chan struct{})}
	for i, req := range [][]byte{nfqBind(1, queue), nfqConfigure(2, queue, delayQueueLen)} {
		if err := d.request(req); err != nil {
			f.Close()
			return nil, fmt.Errorf("configuring nfnetlink queue %d in the network namespace of pid %d (step %d): %w", queue, pid, i+1, err)
		}
	}
	d.wg.Add(2)
	go d.read()
	go d.release()
	return d, nil
}

// netlinkInNetns opens a netfilter netlink socket in another process's
// network namespace: the socket stays in the namespace it was made in.
// It runs on a thread of its own, which is dropped if it cannot get back
// to this process's namespace.
func netlinkInNetns(pid int) (int, error) {
	type result struct {
		fd  int
		err error
	}
	ch := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		fd, err, back := netlinkOnThread(pid)
		if back {
			runtime.UnlockOSThread()
		}
		ch <- result{fd, err}
	}()
	r := <-ch
	return r.fd, r.err
}

func netlinkOnThread(pid int) (fd int, err error, back bool) {
	own, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, err, true
	}
	defer unix.Close(own)
	target, err := unix.Open(fmt.Sprintf("/proc/%d/ns/net", pid), unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, err, true
	}
	defer unix.Close(target)
	if err := unix.Setns(target, unix.CLONE_NEWNET); err != nil {
		return -1, fmt.Errorf("setns: %w (shaping needs root: CAP_SYS_ADMIN and CAP_NET_ADMIN)", err), true
	}
	fd, err = unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, unix.NETLINK_NETFILTER)
	if err == nil {
		if err = unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
			unix.Close(fd)
			fd = -1
		}
	}
	if serr := unix.Setns(own, unix.CLONE_NEWNET); serr != nil {
		if fd >= 0 {
			unix.Close(fd)
		}
		return -1, fmt.Errorf("returning to the runner's network namespace: %w", serr), false
	}
	return fd, err, true
}

// request sends a configuration message and waits for its ack.
func (d *delayer) request(msg []byte) error {
	if _, err := d.f.Write(msg); err != nil {
		return err
	}
	buf := make([]byte, 8192)
	_ = d.f.SetReadDeadline(time.Now().Add(5 * time.Second))
	defer func() { _ = d.f.SetReadDeadline(time.Time{}) }()
	for {
		n, err := d.f.Read(buf)
		if err != nil {
			return err
		}
		msgs, err := parseNetlink(buf[:n])
		if err != nil {
			return err
		}
		for _, m := range msgs {
			if m.ack {
				if m.errno != 0 {
					return unix.Errno(m.errno)
				}
				return nil
			}
		}
	}
}

// read takes queued packets' ids off the socket, stamping their arrival.
func (d *delayer) read() {
	defer d.wg.Done()
	buf := make([]byte, 64<<10)
	for {
		n, err := d.f.Read(buf)
		if err != nil {
			if errors.Is(err, unix.ENOBUFS) {
				continue // notifications lost; the packets are let go by a later batch verdict
			}
			select {
			case <-d.done:
			default:
				d.fail(fmt.Errorf("reading the queue: %w", err))
			}
			return
		}
		now := time.Now()
		msgs, err := parseNetlink(buf[:n])
		if err != nil {
			d.fail(err)
		}
		for _, m := range msgs {
			// ENOENT: the packets were gone already (dropped with a
			// device that went away, as when the container is killed).
			if m.ack && m.errno != 0 && unix.Errno(m.errno) != unix.ENOENT {
				d.fail(fmt.Errorf("verdict refused: %w", unix.Errno(m.errno)))
			}
			if !m.packet {
				continue
			}
			select {
			case d.pending <- queuedPacket{m.packetID, now}:
			case <-d.done:
				return
			}
		}
	}
}

// release accepts every packet once its delay has passed, all that are
// due in one verdict.
func (d *delayer) release() {
	defer d.wg.Done()
	var next *queuedPacket
	var due []time.Time // when the packets of a batch were due
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		if next == nil {
			select {
			case p := <-d.pending:
				next = &p
			case <-d.done:
				return
			}
		}
		if wait := time.Until(next.at.Add(d.delay)); wait > 0 {
			timer.Reset(wait)
			select {
			case <-timer.C:
			case <-d.done:
				return
			}
		}
		last := next.id
		due = append(due[:0], next.at.Add(d.delay))
		next = nil
	drain:
		for {
			select {
			case p := <-d.pending:
				if time.Until(p.at.Add(d.delay)) > 0 {
					next = &p
					break drain
				}
				last = p.id
				due = append(due, p.at.Add(d.delay))
			default:
				break drain
			}
		}
		if _, err := d.f.Write(nfqAcceptUpTo(d.queue, last)); err != nil {
			d.fail(fmt.Errorf("accepting packets: %w", err))
		}
		now := time.Now()
		d.mu.Lock()
		for _, t := range due {
			d.late.add(now.Sub(t))
		}
		d.mu.Unlock()
	}
}

func (d *delayer) fail(err error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.err == nil {
		d.err = err
	}
}

// Late is how many packets were let go, and by how much later than
// their latency on average and at most.
func (d *delayer) Late() (packets int64, mean, maxLate time.Duration) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.late.packets == 0 {
		return 0, 0, 0
	}
	return d.late.packets, d.late.sum / time.Duration(d.late.packets), d.late.max
}

// Err is the first thing that went wrong, or nil.
func (d *delayer) Err() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.err
}

// Close stops delaying; packets still held are dropped with the queue.
// Safe to call twice.
func (d *delayer) Close() error {
	select {
	case <-d.done:
		return nil
	default:
	}
	close(d.done)
	err := d.f.Close()
	d.wg.Wait()
	return err
}
