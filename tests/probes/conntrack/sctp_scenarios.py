#!/usr/bin/env python3
"""SCTP (and UDP-Lite, GRE, DCCP) through the kernel's conntrack: per packet
the ctstate (mangle PREROUTING), the direction and the flow's conntrack -L
line. Run as root: python3 sctp_scenarios.py (uses probe.py's namespaces)."""
import struct, sys, time
from probe import *

C, S = "10.201.1.5", "10.201.2.5"


def crc32c(data):
    crc = 0xFFFFFFFF
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    return crc ^ 0xFFFFFFFF


def chunk(t, flags=0, value=b"", length=None):
    ln = 4 + len(value) if length is None else length
    c = struct.pack("!BBH", t, flags, ln) + value
    while len(c) % 4:
        c += b"\0"
    return c


def sctp(sp, dp, vtag, chunks, bad=False):
    hdr = struct.pack("!HHII", sp, dp, vtag, 0)
    body = hdr + b"".join(chunks)
    c = crc32c(body)
    if bad:
        c ^= 0x1
    return body[:8] + struct.pack("<I", c) + body[12:]


def init(tag, t=1):
    return chunk(t, 0, struct.pack("!IIHHI", tag, 65536, 10, 10, 1000))


def init_ack(tag):
    return chunk(2, 0, struct.pack("!IIHHI", tag, 65536, 10, 10, 5000) + struct.pack("!HH", 7, 12) + b"COOKIE!!")


def data(tsn, payload=b"hello"):
    return chunk(0, 3, struct.pack("!IHHI", tsn, 0, 0, 0) + payload)


def sack(tsn):
    return chunk(3, 0, struct.pack("!IIHH", tsn, 65536, 0, 0))


def Sc(sp, dp, vtag, chunks, src=C, dst=S, bad=False):
    return ipv4(src, dst, 132, sctp(sp, dp, vtag, chunks, bad=bad))


def flow_lines(p, port):
    return [l for l in p.table() if f"sport={port} " in l or f"dport={port} " in l or port == 0]


def run(p, name, steps, port):
    print(f"== {name}")
    p.flush()
    time.sleep(0.05)
    p.prev = p.counters()
    for i, st in enumerate(steps, 1):
        if isinstance(st, (int, float)):
            time.sleep(st)
            print(f"   (sleep {st})")
            continue
        desc, pkt = st
        state, d = p.send(pkt)
        lines = flow_lines(p, port)
        print(f"{i:3} {desc:44} {state:12} {d:9} | " + (" || ".join(lines) if lines else "(no entry)"))


IT, RT = 0x11111111, 0x22222222  # client's and server's init tags


def handshake(P):
    return [
        ("C>S INIT", Sc(P, 80, 0, [init(IT)])),
        ("S>C INIT_ACK", Sc(80, P, IT, [init_ack(RT)], src=S, dst=C)),
        ("C>S COOKIE_ECHO", Sc(P, 80, RT, [chunk(10, 0, b"COOKIE!!")])),
        ("S>C COOKIE_ACK", Sc(80, P, IT, [chunk(11)], src=S, dst=C)),
    ]


def sctp_scenarios(p):
    P = 40001
    run(p, "full association", handshake(P) + [
        ("C>S DATA", Sc(P, 80, RT, [data(1000)])),
        ("S>C SACK", Sc(80, P, IT, [sack(1000)], src=S, dst=C)),
        ("S>C DATA", Sc(80, P, IT, [data(5000)], src=S, dst=C)),
        ("C>S SACK+DATA", Sc(P, 80, RT, [sack(5000), data(1001)])),
        ("C>S SHUTDOWN", Sc(P, 80, RT, [chunk(7, 0, struct.pack("!I", 5000))])),
        ("S>C SHUTDOWN_ACK", Sc(80, P, IT, [chunk(8)], src=S, dst=C)),
        ("C>S SHUTDOWN_COMPLETE", Sc(P, 80, RT, [chunk(14)])),
        ("C>S INIT again (new assoc)", Sc(P, 80, 0, [init(0x33333333)])),
        ("S>C INIT_ACK", Sc(80, P, 0x33333333, [init_ack(0x44444444)], src=S, dst=C)),
    ], P)
    P = 40002
    run(p, "bad crc init, then good", [
        ("C>S INIT bad CRC", Sc(P, 80, 0, [init(IT)], bad=True)),
        ("C>S INIT", Sc(P, 80, 0, [init(IT)])),
        ("C>S INIT retransmit", Sc(P, 80, 0, [init(IT)])),
        ("S>C INIT_ACK bad CRC", Sc(80, P, IT, [init_ack(RT)], src=S, dst=C, bad=True)),
        ("S>C INIT_ACK wrong vtag", Sc(80, P, 0x5, [init_ack(RT)], src=S, dst=C)),
        ("S>C INIT_ACK", Sc(80, P, IT, [init_ack(RT)], src=S, dst=C)),
        ("C>S DATA wrong vtag", Sc(P, 80, 0x77, [data(1)])),
        ("C>S COOKIE_ECHO wrong vtag", Sc(P, 80, 0x77, [chunk(10, 0, b"COOKIE!!")])),
        ("C>S COOKIE_ECHO+DATA", Sc(P, 80, RT, [chunk(10, 0, b"COOKIE!!"), data(1000)])),
        ("S>C COOKIE_ACK+SACK", Sc(80, P, IT, [chunk(11), sack(1000)], src=S, dst=C)),
        ("C>S DATA bad CRC", Sc(P, 80, RT, [data(1001)], bad=True)),
        ("C>S DATA zero-length chunk", Sc(P, 80, RT, [data(1001), chunk(0, 0, b"", length=0)])),
        ("C>S DATA+INIT", Sc(P, 80, RT, [data(1001), init(9)])),
        ("C>S no chunks", Sc(P, 80, RT, [])),
        ("C>S ABORT wrong vtag", Sc(P, 80, 0x77, [chunk(6)])),
        ("S>C ABORT T flag, client's vtag?", Sc(80, P, RT, [chunk(6, 1)], src=S, dst=C)),
        ("C>S DATA after abort", Sc(P, 80, RT, [data(1002)])),
    ], P)
    P = 40003
    run(p, "out of the blue", [
        ("C>S DATA ootb", Sc(P, 80, 0x1234, [data(1)])),
        ("C>S ABORT ootb", Sc(P, 80, 0x1234, [chunk(6)])),
        ("C>S SHUTDOWN_COMPLETE ootb", Sc(P, 80, 0x1234, [chunk(14)])),
        ("C>S COOKIE_ACK ootb", Sc(P, 80, 0x1234, [chunk(11)])),
        ("C>S SACK ootb", Sc(P, 80, 0x1234, [sack(1)])),
        ("C>S INIT vtag!=0", Sc(P, 80, 0x1234, [init(IT)])),
        ("C>S INIT+DATA", Sc(P, 80, 0, [init(IT), data(1)])),
        ("C>S COOKIE_ECHO ootb", Sc(P, 80, 0x1234, [chunk(10, 0, b"COOKIE!!")])),
        ("C>S SHUTDOWN ootb", Sc(P, 80, 0x1234, [chunk(7, 0, struct.pack("!I", 1))])),
        ("C>S ERROR ootb", Sc(P, 80, 0x1234, [chunk(9)])),
        ("C>S INIT_ACK ootb", Sc(P, 80, 0x1234, [init_ack(RT)])),
    ], 0)
    P = 40004
    run(p, "shutdown_ack ootb, heartbeat", [
        ("C>S SHUTDOWN_ACK ootb", Sc(P, 80, 0x1234, [chunk(8)])),
        ("S>C SHUTDOWN_COMPLETE T", Sc(80, P, 0x1234, [chunk(14, 1)], src=S, dst=C)),
    ], P)
    P = 40005
    run(p, "heartbeat new", [
        ("C>S HEARTBEAT", Sc(P, 80, 0xabc, [chunk(4, 0, struct.pack("!HH", 1, 8) + b"HBHB")])),
        ("C>S DATA", Sc(P, 80, 0xabc, [data(1)])),
        ("S>C HEARTBEAT_ACK", Sc(80, P, 0xdef, [chunk(5, 0, struct.pack("!HH", 1, 8) + b"HBHB")], src=S, dst=C)),
        ("S>C DATA", Sc(80, P, 0xdef, [data(1)], src=S, dst=C)),
    ], P)
    P = 40006
    run(p, "abort established", handshake(P) + [
        ("C>S ABORT", Sc(P, 80, RT, [chunk(6)])),
        ("S>C DATA", Sc(80, P, IT, [data(1)], src=S, dst=C)),
        ("C>S INIT", Sc(P, 80, 0, [init(0x55)])),
    ], P)
    P = 40008
    run(p, "invalid after a valid chunk", handshake(P)[:3] + [
        ("S>C COOKIE_ACK+ABORT/T wrong tag", Sc(80, P, IT, [chunk(11), chunk(6, 1)], src=S, dst=C)),
        ("S>C DATA", Sc(80, P, IT, [data(7)], src=S, dst=C)),
    ], P)
    P = 40007
    run(p, "truncated", [
        ("C>S 8 bytes", ipv4(C, S, 132, struct.pack("!HHI", P, 80, 0))),
        ("C>S 3 bytes", ipv4(C, S, 132, b"\x9c\x47\x00")),
        ("C>S INIT + 2 trailing bytes", ipv4(C, S, 132, sctp(P, 80, 0, [init(IT)]) + b"\0\0")),
    ], 0)


def other_scenarios(p):
    # UDP-Lite: checksum coverage 8 (header only), full (0), bad coverage.
    def ul(sp, dp, payload, cov, src=C, dst=S, bad=False, csum0=False, pp=17):
        u = bytearray(struct.pack("!HHHH", sp, dp, cov, 0) + payload)
        n = len(u) if cov == 0 else min(cov, len(u))
        ph = ip4(src) + ip4(dst) + struct.pack("!BBH", 0, pp, len(u))
        c = csum(ph + bytes(u[:n]))
        if c == 0:
            c = 0xffff
        if bad:
            c ^= 0x5555
        if csum0:
            c = 0
        u[6:8] = struct.pack("!H", c)
        return ipv4(src, dst, 136, bytes(u))
    run(p, "udplite", [
        ("C>S cov 8", ul(41000, 53, b"abcd", 8)),
        ("S>C cov 0 (all)", ul(53, 41000, b"abcdef", 0, src=S, dst=C)),
        ("C>S cov 8 bad", ul(41000, 53, b"abcd", 8, bad=True)),
        ("C>S cov 5 (<8)", ul(41001, 53, b"abcd", 5)),
        ("C>S cov 100 (> len)", ul(41002, 53, b"abcd", 100)),
        ("C>S csum 0", ul(41003, 53, b"abcd", 8, csum0=True)),
        ("C>S cov 12 payload bad beyond cov", ul(41004, 53, b"abcdefgh", 12)),
        ("C>S 6 bytes", ipv4(C, S, 136, b"\xa0\x28\x00\x35\x00\x08")),
        ("C>S cov 8, pseudo proto 136 (RFC)", ul(41005, 53, b"abcd", 8, pp=136)),
        ("C>S cov 8 again (17)", ul(41000, 53, b"abcd", 8)),
        ("S>C reply", ul(53, 41000, b"abcdef", 0, src=S, dst=C)),
        ("C>S after reply", ul(41000, 53, b"abcd", 8)),
    ], 0)
    def gre(key=None, proto=0x0800, ver=0, payload=b"\x45" + b"\0" * 19, src=C, dst=S):
        flags = 0x2000 if key is not None else 0
        h = struct.pack("!HH", flags | ver, proto)
        if key is not None:
            h += struct.pack("!I", key)
        return ipv4(src, dst, 47, h + payload)
    run(p, "gre", [
        ("C>S GRE v0 no key", gre()),
        ("S>C GRE v0 no key", gre(src=S, dst=C)),
        ("C>S GRE v0 key 5", gre(key=5)),
        ("C>S GRE v1 (pptp) key 7", gre(key=0x00000007, proto=0x880b, ver=1)),
        ("S>C GRE v1 key 9", gre(key=0x00000009, proto=0x880b, ver=1, src=S, dst=C)),
    ], 0)
    def dccp(sp, dp, t, src=C, dst=S):
        # 12-byte generic header with X=0 (short seq), type in bits 1..4.
        h = bytearray(struct.pack("!HHBBH", sp, dp, 3, 0, 0) + bytes([(t << 1), 0, 0, 1]))
        ph = ip4(src) + ip4(dst) + struct.pack("!BBH", 0, 33, len(h))
        h[6:8] = struct.pack("!H", csum(ph + bytes(h)))
        return ipv4(src, dst, 33, bytes(h))
    run(p, "dccp", [
        ("C>S DCCP-Request", dccp(42000, 80, 0)),
        ("S>C DCCP-Response", dccp(80, 42000, 1, src=S, dst=C)),
        ("C>S DCCP-Data ootb", dccp(42001, 80, 2)),
    ], 0)


if __name__ == "__main__":
    setup()
    try:
        p = Probe()
        if "--other" in sys.argv:
            other_scenarios(p)
        else:
            sctp_scenarios(p)
    finally:
        teardown()
