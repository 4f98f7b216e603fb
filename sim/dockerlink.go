package sim

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/shoalnet/shoal/internal/dockercli"
)

// containerLink is a container's access link as the host sees it: the
// container's main process (whose network namespace it is), the host
// end of its veth pair, and the delayer holding its packets.
//
// A link is shaped from the host, as the in-process runner's simnet
// shapes a host's link (the image is FROM scratch: no tc inside):
//
//   - download: a token bucket (tc tbf) on the host end of the veth,
//     whose egress is what the container receives;
//   - upload: a token bucket on the container's eth0, set from the host
//     in the container's namespace (nsenter -n);
//   - latency: every packet that leaves or enters the container (not its
//     loopback, where the CLI talks to the daemon) waits the link's
//     one-way latency in an NFQUEUE the runner holds (delayer). netem
//     is not in this kernel (nor fq, whose EDT a tc-bpf program could
//     set); the nfnetlink queue is. A packet between two containers thus
//     waits both their latencies, as in simnet (access[from]+access[to]);
//   - partitions: a chain SHOAL-PART, first in INPUT and OUTPUT, drops
//     packets from and to the other side's addresses while the split
//     lasts.
type containerLink struct {
	pid   int
	ip    string
	veth  string // host end
	delay *delayer
}

// partChain is the iptables chain a partition fills.
const partChain = "SHOAL-PART"

// attachLink finds the running container's process, address and veth.
func attachLink(ctx context.Context, container string) (*containerLink, error) {
	out, err := dockercli.Run(ctx, nil, "inspect", "--format", "{{.State.Pid}} {{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}", container)
	if err != nil {
		return nil, err
	}
	f := strings.Fields(out)
	if len(f) < 2 {
		return nil, fmt.Errorf("docker inspect %s: want its pid and address, got %q", container, out)
	}
	l := &containerLink{ip: f[1]}
	if l.pid, err = strconv.Atoi(f[0]); err != nil || l.pid <= 0 {
		return nil, fmt.Errorf("docker inspect %s: pid %q: is it running?", container, f[0])
	}
	link, err := l.inNetns(ctx, nil, "ip", "-o", "link", "show", "eth0")
	if err != nil {
		return nil, err
	}
	l.veth, err = hostPeer(link)
	if err != nil {
		return nil, fmt.Errorf("container %s: %w", container, err)
	}
	return l, nil
}

var peerIndex = regexp.MustCompile(`^\d+: [^@:]+@if(\d+):`)

// hostPeer names the host's end of the veth whose container end `ip -o
// link show eth0` described ("7: eth0@if8: ...": the peer's index is 8).
func hostPeer(ipLink string) (string, error) {
	m := peerIndex.FindStringSubmatch(ipLink)
	if m == nil {
		return "", fmt.Errorf("eth0 is not one end of a veth pair: %q", ipLink)
	}
	idx, _ := strconv.Atoi(m[1])
	ifc, err := net.InterfaceByIndex(idx)
	if err != nil {
		return "", fmt.Errorf("the host end of eth0 (interface %d): %w", idx, err)
	}
	return ifc.Name, nil
}

// hostCmd runs a command on the host; an error carries its stderr.
func hostCmd(ctx context.Context, stdin []byte, name string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(errb.String()))
	}
	return strings.TrimSpace(out.String()), nil
}

// inNetns runs a host command in the container's network namespace.
func (l *containerLink) inNetns(ctx context.Context, stdin []byte, args ...string) (string, error) {
	return hostCmd(ctx, stdin, "nsenter", append([]string{"-t", strconv.Itoa(l.pid), "-n", "--"}, args...)...)
}

// tbfArgs is a token bucket of rate Mbit/s: a burst of 4 ms of the rate
// (at least 16 KiB, so that a GSO packet passes whole), and a queue of
// at most 50 ms beyond which packets are dropped, as a router would.
func tbfArgs(mbit float64) []string {
	bps := int64(mbit * 1e6)
	burst := max(bps/8*4/1000, 16<<10)
	return []string{"root", "tbf", "rate", strconv.FormatInt(bps, 10) + "bit", "burst", strconv.FormatInt(burst, 10), "latency", "50ms"}
}

// shape applies the link's rates and latency (see containerLink).
func (l *containerLink) shape(ctx context.Context, upMbit, downMbit float64, latency time.Duration) error {
	if _, err := hostCmd(ctx, nil, "tc", append([]string{"qdisc", "replace", "dev", l.veth}, tbfArgs(downMbit)...)...); err != nil {
		return fmt.Errorf("shaping the download: %w", err)
	}
	if _, err := l.inNetns(ctx, nil, append([]string{"tc", "qdisc", "replace", "dev", "eth0"}, tbfArgs(upMbit)...)...); err != nil {
		return fmt.Errorf("shaping the upload: %w", err)
	}
	rules := "*filter\n:" + partChain + " - [0:0]\n-A INPUT -j " + partChain + "\n-A OUTPUT -j " + partChain + "\n"
	if latency > 0 {
		d, err := openDelayer(l.pid, 0, latency)
		if err != nil {
			return fmt.Errorf("delaying packets: %w", err)
		}
		l.delay = d
		rules += "-A INPUT ! -i lo -j NFQUEUE --queue-num 0\n-A OUTPUT ! -o lo -j NFQUEUE --queue-num 0\n"
	}
	if _, err := l.inNetns(ctx, []byte(rules+"COMMIT\n"), "iptables-restore", "--noflush"); err != nil {
		return fmt.Errorf("adding the latency and partition rules: %w", err)
	}
	return nil
}

// block drops every packet to and from ips (a partition); unblock ends it.
func (l *containerLink) block(ctx context.Context, ips []string) error {
	var b strings.Builder
	b.WriteString("*filter\n:" + partChain + " - [0:0]\n-F " + partChain + "\n")
	for _, ip := range ips {
		fmt.Fprintf(&b, "-A %s -s %s -j DROP\n-A %s -d %s -j DROP\n", partChain, ip, partChain, ip)
	}
	b.WriteString("COMMIT\n")
	_, err := l.inNetns(ctx, []byte(b.String()), "iptables-restore", "--noflush")
	return err
}

func (l *containerLink) unblock(ctx context.Context) error { return l.block(ctx, nil) }

// counters is the bytes the container sent and received on its link,
// as its veth counts them (Ethernet frames), read from the host end.
func (l *containerLink) counters() (up, down int64, err error) {
	read := func(name string) (int64, error) {
		b, err := os.ReadFile(filepath.Join("/sys/class/net", l.veth, "statistics", name))
		if err != nil {
			return 0, err
		}
		return strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	}
	if up, err = read("rx_bytes"); err != nil {
		return 0, 0, err
	}
	down, err = read("tx_bytes")
	return up, down, err
}

// peakRSS is the peak resident memory of the container's daemon (the
// kernel's VmHWM of its process): the container's own memory, without
// the page cache of the files it wrote, which the cgroup's usage counts.
func (l *containerLink) peakRSS() (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", l.pid))
	if err != nil {
		return 0, err
	}
	return parseVmHWM(string(b))
}

func parseVmHWM(status string) (int64, error) {
	for line := range strings.SplitSeq(status, "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			f := strings.Fields(rest)
			if len(f) == 2 && f[1] == "kB" {
				kb, err := strconv.ParseInt(f[0], 10, 64)
				return kb << 10, err
			}
		}
	}
	return 0, fmt.Errorf("no VmHWM line in /proc/PID/status")
}

// close stops the delayer (the container's packets then wait forever:
// call it once the container is gone or going).
func (l *containerLink) close() error {
	if l == nil || l.delay == nil {
		return nil
	}
	err := l.delay.Err()
	if cerr := l.delay.Close(); err == nil {
		err = cerr
	}
	return err
}

// shapingAvailable says why this host cannot shape container links, or nil.
func shapingAvailable() error {
	if os.Geteuid() != 0 {
		return fmt.Errorf("shaping container links needs root (tc on the host's veths, nsenter into the containers): run shoal sim --runner docker as root")
	}
	for _, tool := range []string{"tc", "nsenter", "ip", "iptables-restore"} {
		if _, err := exec.LookPath(tool); err != nil {
			return fmt.Errorf("shaping container links needs %s on the host: %w", tool, err)
		}
	}
	return nil
}
