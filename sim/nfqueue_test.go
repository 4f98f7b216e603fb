package sim

import (
	"encoding/binary"
	"errors"
	"testing"
)

// packetMsg is a queued-packet message as the kernel sends it: the
// nfgenmsg header, then NFQA_PACKET_HDR with the id (and, like the
// kernel, other attributes around it).
func packetMsg(id uint32) []byte {
	hdr := append(be32(id), 0x08, 0x00, 3) // id, hw_protocol (IPv4), hook (LOCAL_OUT)
	mark := nlAttr{6, be32(7)}             // NFQA_MARK, before the header
	b := nlMessage(nfqMsgPacket, 0, 0, 0, mark, nlAttr{nfqaPacketHdr, hdr})
	return b
}

func errorMsg(errno int32) []byte {
	b := make([]byte, nlmsgHdrLen+4+nlmsgHdrLen)
	binary.NativeEndian.PutUint32(b[0:4], uint32(len(b)))
	binary.NativeEndian.PutUint16(b[4:6], nlmsgError)
	binary.NativeEndian.PutUint32(b[16:20], uint32(-errno))
	return b
}

func TestParseNetlink(t *testing.T) {
	dgram := append(append(packetMsg(41), packetMsg(42)...), errorMsg(0)...)
	msgs, err := parseNetlink(dgram)
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != 3 || !msgs[0].packet || msgs[0].packetID != 41 || msgs[1].packetID != 42 || !msgs[2].ack || msgs[2].errno != 0 {
		t.Fatalf("parsed %+v, want packets 41, 42 and an ack", msgs)
	}
	msgs, err = parseNetlink(errorMsg(1)) // EPERM
	if err != nil || len(msgs) != 1 || msgs[0].errno != 1 {
		t.Fatalf("parsed %+v, %v; want an error message with errno 1", msgs, err)
	}
	for name, b := range map[string][]byte{
		"cut":       packetMsg(1)[:nlmsgHdrLen+6],
		"no header": nlMessage(nfqMsgPacket, 0, 0, 0, nlAttr{6, be32(7)}),
		"short hdr": nlMessage(nfqMsgPacket, 0, 0, 0, nlAttr{nfqaPacketHdr, []byte{1, 2}}),
	} {
		if _, err := parseNetlink(b); !errors.Is(err, errNetlinkShort) {
			t.Errorf("%s: err = %v, want errNetlinkShort", name, err)
		}
	}
}

// TestNfqRequests: the requests carry what the kernel reads — the
// subsystem and message type, the queue number in network order, and
// the verdict and id of a batch verdict.
func TestNfqRequests(t *testing.T) {
	v := nfqAcceptUpTo(5, 1234)
	if len(v) != nlmsgHdrLen+nfgenHdrLen+nlaHdrLen+8 || int(binary.NativeEndian.Uint32(v[0:4])) != len(v) {
		t.Fatalf("verdict length %d (header says %d)", len(v), binary.NativeEndian.Uint32(v[0:4]))
	}
	if typ := binary.NativeEndian.Uint16(v[4:6]); typ != 3<<8|3 {
		t.Errorf("type %#x, want NFNL_SUBSYS_QUEUE<<8 | NFQNL_MSG_VERDICT_BATCH", typ)
	}
	if q := binary.BigEndian.Uint16(v[18:20]); q != 5 {
		t.Errorf("queue %d, want 5", q)
	}
	a := v[nlmsgHdrLen+nfgenHdrLen:]
	if binary.NativeEndian.Uint16(a[2:4]) != nfqaVerdictHdr || binary.BigEndian.Uint32(a[4:8]) != nfAccept || binary.BigEndian.Uint32(a[8:12]) != 1234 {
		t.Errorf("verdict attribute % x, want NF_ACCEPT up to 1234", a)
	}
	c := nfqConfigure(2, 0, 100)
	if len(c)%4 != 0 || binary.NativeEndian.Uint16(c[6:8]) != nlmFRequest|nlmFAck {
		t.Errorf("config message of %d bytes, flags %#x", len(c), binary.NativeEndian.Uint16(c[6:8]))
	}
}

// FuzzParseNetlink: whatever the socket delivers, parsing returns
// messages or an error and never panics; it finds no more messages than
// the datagram has headers for, and an error message is never skipped.
func FuzzParseNetlink(f *testing.F) {
	f.Add(packetMsg(9))
	f.Add(errorMsg(0))
	f.Add(append(packetMsg(1), 0, 0))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		msgs, err := parseNetlink(b)
		if len(msgs) > len(b)/nlmsgHdrLen {
			t.Fatalf("%d messages from %d bytes", len(msgs), len(b))
		}
		if err == nil && len(b) >= nlmsgHdrLen && len(msgs) == 0 {
			typ := binary.NativeEndian.Uint16(b[4:6])
			if typ == nlmsgError {
				t.Fatalf("an error message parsed to nothing: % x", b)
			}
		}
	})
}
