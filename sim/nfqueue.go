package sim

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// The docker runner delays packets with NFQUEUE (netem is not built into
// every kernel; the nfnetlink queue is): an iptables rule in a
// container's network namespace hands each packet to a netlink socket
// the runner holds, and the runner accepts it once the link's latency
// has passed. This file is the netlink message format of that queue
// (linux/netfilter/nfnetlink_queue.h), without I/O; delay_linux.go runs
// it.

const (
	nlmsgHdrLen  = 16
	nfgenHdrLen  = 4
	nlaHdrLen    = 4
	nfnlSubsysQ  = 3 // NFNL_SUBSYS_QUEUE
	nfqMsgPacket = 0 // NFQNL_MSG_PACKET
	nfqMsgConfig = 2 // NFQNL_MSG_CONFIG
	nfqMsgBatch  = 3 // NFQNL_MSG_VERDICT_BATCH

	nlmsgError = 2 // NLMSG_ERROR
	nlmsgDone  = 3

	nlmFRequest = 1
	nlmFAck     = 4

	nfqaPacketHdr  = 1 // NFQA_PACKET_HDR
	nfqaVerdictHdr = 2 // NFQA_VERDICT_HDR

	nfqaCfgCmd      = 1 // NFQA_CFG_CMD
	nfqaCfgParams   = 2 // NFQA_CFG_PARAMS
	nfqaCfgQueueMax = 3 // NFQA_CFG_QUEUE_MAXLEN
	nfqaCfgMask     = 4 // NFQA_CFG_MASK
	nfqaCfgFlags    = 5 // NFQA_CFG_FLAGS

	nfqCmdBind   = 1
	nfqCopyMeta  = 1 // NFQNL_COPY_META: no payload
	nfqCfgFlgGSO = 4 // NFQA_CFG_F_GSO: queue GSO packets whole

	nfAccept = 1
)

// errNetlinkShort is a message shorter than its header says.
var errNetlinkShort = errors.New("sim: netlink message truncated")

// nfqMessage is one message the kernel sent on a queue socket: a queued
// packet's id, or the answer to a request (errno 0 is an ack).
type nfqMessage struct {
	packet   bool
	packetID uint32
	ack      bool
	errno    int32
}

// parseNetlink splits a datagram read from the queue socket into its
// messages. Anything it does not know is skipped; what is cut short is
// an error.
func parseNetlink(b []byte) ([]nfqMessage, error) {
	var out []nfqMessage
	for len(b) >= nlmsgHdrLen {
		l := int(binary.NativeEndian.Uint32(b[0:4]))
		typ := binary.NativeEndian.Uint16(b[4:6])
		if l < nlmsgHdrLen || l > len(b) {
			return out, fmt.Errorf("%w: length %d of %d bytes", errNetlinkShort, l, len(b))
		}
		body := b[nlmsgHdrLen:l]
		switch {
		case typ == nlmsgError:
			if len(body) < 4 {
				return out, fmt.Errorf("%w: error message of %d bytes", errNetlinkShort, len(body))
			}
			out = append(out, nfqMessage{ack: true, errno: -int32(binary.NativeEndian.Uint32(body[0:4]))})
		case typ == nlmsgDone:
		case typ == nfnlSubsysQ<<8|nfqMsgPacket:
			m, err := parsePacket(body)
			if err != nil {
				return out, err
			}
			out = append(out, m)
		}
		b = b[min(align4(l), len(b)):]
	}
	return out, nil
}

// parsePacket reads a queued packet's id from its attributes.
func parsePacket(body []byte) (nfqMessage, error) {
	if len(body) < nfgenHdrLen {
		return nfqMessage{}, fmt.Errorf("%w: packet message of %d bytes", errNetlinkShort, len(body))
	}
	attrs := body[nfgenHdrLen:]
	for len(attrs) >= nlaHdrLen {
		al := int(binary.NativeEndian.Uint16(attrs[0:2]))
		at := binary.NativeEndian.Uint16(attrs[2:4]) & 0x3fff // without the nested/byte-order flags
		if al < nlaHdrLen || al > len(attrs) {
			return nfqMessage{}, fmt.Errorf("%w: attribute length %d of %d bytes", errNetlinkShort, al, len(attrs))
		}
		if at == nfqaPacketHdr {
			if al < nlaHdrLen+4 {
				return nfqMessage{}, fmt.Errorf("%w: packet header of %d bytes", errNetlinkShort, al)
			}
			return nfqMessage{packet: true, packetID: binary.BigEndian.Uint32(attrs[4:8])}, nil
		}
		if align4(al) >= len(attrs) {
			break
		}
		attrs = attrs[align4(al):]
	}
	return nfqMessage{}, fmt.Errorf("%w: packet message without a packet header", errNetlinkShort)
}

func align4(n int) int { return (n + 3) &^ 3 }

// nlMessage builds one netlink message of the queue subsystem for queue
// number queue, with the given attributes (type, value).
func nlMessage(msg uint16, flags uint16, seq uint32, queue uint16, attrs ...nlAttr) []byte {
	b := make([]byte, nlmsgHdrLen+nfgenHdrLen)
	binary.NativeEndian.PutUint16(b[4:6], nfnlSubsysQ<<8|msg)
	binary.NativeEndian.PutUint16(b[6:8], flags)
	binary.NativeEndian.PutUint32(b[8:12], seq)
	b[16] = 0 // AF_UNSPEC
	b[17] = 0 // NFNETLINK_V0
	binary.BigEndian.PutUint16(b[18:20], queue)
	for _, a := range attrs {
		h := make([]byte, nlaHdrLen, align4(nlaHdrLen+len(a.val)))
		binary.NativeEndian.PutUint16(h[0:2], uint16(nlaHdrLen+len(a.val)))
		binary.NativeEndian.PutUint16(h[2:4], a.typ)
		h = append(h, a.val...)
		b = append(b, h[:cap(h)]...)
	}
	binary.NativeEndian.PutUint32(b[0:4], uint32(len(b)))
	return b
}

type nlAttr struct {
	typ uint16
	val []byte
}

func be32(v uint32) []byte { return binary.BigEndian.AppendUint32(nil, v) }

// nfqBind is the request that binds the socket to queue number queue.
func nfqBind(seq uint32, queue uint16) []byte {
	return nlMessage(nfqMsgConfig, nlmFRequest|nlmFAck, seq, queue, nlAttr{nfqaCfgCmd, []byte{nfqCmdBind, 0, 0, 0}})
}

// nfqConfigure asks for packet ids only (no payload), a queue of maxLen
// packets, and GSO packets whole.
func nfqConfigure(seq uint32, queue uint16, maxLen uint32) []byte {
	params := append(be32(0), nfqCopyMeta)
	return nlMessage(nfqMsgConfig, nlmFRequest|nlmFAck, seq, queue,
		nlAttr{nfqaCfgParams, params},
		nlAttr{nfqaCfgQueueMax, be32(maxLen)},
		nlAttr{nfqaCfgMask, be32(nfqCfgFlgGSO)},
		nlAttr{nfqaCfgFlags, be32(nfqCfgFlgGSO)})
}

// nfqAcceptUpTo accepts every queued packet whose id is at most id (a
// request without an ack: the kernel ignores a message that is not a
// request, and answers an ack only on failure).
func nfqAcceptUpTo(queue uint16, id uint32) []byte {
	return nlMessage(nfqMsgBatch, nlmFRequest, 0, queue, nlAttr{nfqaVerdictHdr, append(be32(nfAccept), be32(id)...)})
}
