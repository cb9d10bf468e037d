#!/usr/bin/env python3
"""Writes data/captures/docker-host-eth0.pcap: deterministic sample traffic as
seen on eth0 of the default Docker host (198.51.100.1/24), for the README's
demo and for tests that need a real capture file.

Mix (fixed seed): TCP connections to the published ports 10000 (redis) and
5353/udp (dns), to an unpublished port, ICMP echo, one ICMP port-unreachable
error with an embedded UDP header, VLAN-tagged frames, IP options, fragments,
and a handful of frames the parser must reject or count (ARP, IPv6, truncated
IP, bad header length).

Usage: tools/gen_sample_capture.py [OUTPUT]
"""
import random
import struct
import sys

HOST_MAC = bytes.fromhex("020000000001")
PEER_MAC = bytes.fromhex("020000000099")
HOST_IP = "198.51.100.1"


def ip_bytes(a):
    return bytes(int(x) for x in a.split("."))


def csum(data):
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return (~s) & 0xFFFF


def ipv4(src, dst, proto, payload, ident=1, ttl=64, options=b"", frag=0, mf=False, df=True):
    ihl = 5 + len(options) // 4
    flags = (0x4000 if df else 0) | (0x2000 if mf else 0) | (frag & 0x1FFF)
    hdr = struct.pack("!BBHHHBBH4s4s", 0x40 | ihl, 0, 4 * ihl + len(payload), ident, flags, ttl, proto, 0,
                      ip_bytes(src), ip_bytes(dst)) + options
    hdr = hdr[:10] + struct.pack("!H", csum(hdr)) + hdr[12:]
    return hdr + payload


def pseudo(src, dst, proto, l4):
    return ip_bytes(src) + ip_bytes(dst) + struct.pack("!BBH", 0, proto, len(l4))


def tcp(src, dst, sport, dport, flags, seq=1000, ack=0, payload=b""):
    seg = struct.pack("!HHIIBBHHH", sport, dport, seq, ack, 5 << 4, flags, 64240, 0, 0) + payload
    c = csum(pseudo(src, dst, 6, seg) + seg)
    return ipv4(src, dst, 6, seg[:16] + struct.pack("!H", c) + seg[18:])


def udp(src, dst, sport, dport, payload=b""):
    dgram = struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload
    c = csum(pseudo(src, dst, 17, dgram) + dgram) or 0xFFFF
    return ipv4(src, dst, 17, dgram[:6] + struct.pack("!H", c) + dgram[8:])


def icmp(src, dst, typ, code, rest, payload=b""):
    msg = struct.pack("!BBH", typ, code, 0) + rest + payload
    return ipv4(src, dst, 1, msg[:2] + struct.pack("!H", csum(msg)) + msg[4:])


def eth(payload, ethertype=0x0800, vlan=None):
    tag = struct.pack("!HH", 0x8100, vlan) if vlan is not None else b""
    frame = HOST_MAC + PEER_MAC + tag + struct.pack("!H", ethertype) + payload
    return frame + b"\0" * max(0, 60 - len(frame))


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else "data/captures/docker-host-eth0.pcap"
    rng = random.Random(20261126)
    frames = []
    # TCP handshakes + data to published and unpublished ports from outside peers.
    for i in range(40):
        peer = "203.0.113.%d" % (1 + i % 20)
        sport = 40000 + i
        dport = rng.choice([10000, 10000, 10000, 8080, 22, 443])
        frames.append(eth(tcp(peer, HOST_IP, sport, dport, 0x02, seq=i * 7919)))
        frames.append(eth(tcp(peer, HOST_IP, sport, dport, 0x10, seq=i * 7919 + 1, ack=1)))
        frames.append(eth(tcp(peer, HOST_IP, sport, dport, 0x18, seq=i * 7919 + 1, ack=1,
                              payload=bytes(rng.randrange(256) for _ in range(rng.choice([0, 64, 512, 1400]))))))
    # UDP to the published DNS port and elsewhere.
    for i in range(20):
        frames.append(eth(udp("203.0.113.%d" % (50 + i), HOST_IP, 33000 + i, rng.choice([5353, 5353, 53, 123]),
                              payload=b"\x12\x34\x01\x00\x00\x01" + bytes(20))))
    # ICMP echo and a port-unreachable error quoting a UDP datagram.
    for i in range(5):
        frames.append(eth(icmp("203.0.113.9", HOST_IP, 8, 0, struct.pack("!HH", 0x77, i), bytes(56))))
    quoted = udp(HOST_IP, "203.0.113.9", 5353, 33001, b"x" * 8)[:28]
    frames.append(eth(icmp("203.0.113.9", HOST_IP, 3, 3, b"\0\0\0\0", quoted)))
    # VLAN-tagged TCP SYN, an IPv4 packet with options (record route), two fragments.
    frames.append(eth(tcp("203.0.113.30", HOST_IP, 41000, 10000, 0x02), vlan=100))
    frames.append(eth(ipv4("203.0.113.31", HOST_IP, 17, struct.pack("!HHHH", 1, 2, 8, 0),
                           options=b"\x07\x07\x04" + bytes(4) + b"\x00")))
    big = udp("203.0.113.32", HOST_IP, 34000, 5353, bytes(1600))[20:]
    frames.append(eth(ipv4("203.0.113.32", HOST_IP, 17, big[:1480], ident=99, mf=True, df=False)))
    frames.append(eth(ipv4("203.0.113.32", HOST_IP, 17, big[1480:], ident=99, frag=1480 // 8, df=False)))
    # Frames that are not IPv4 or are malformed: counted, never lost.
    frames.append(eth(bytes(28), ethertype=0x0806))                       # ARP
    frames.append(eth(bytes.fromhex("6000000000083a40") + bytes(40), ethertype=0x86DD))  # IPv6
    frames.append(eth(tcp("203.0.113.40", HOST_IP, 1, 2, 0x18, payload=bytes(100))[:30]))  # total length beyond frame
    bad = bytearray(tcp("203.0.113.41", HOST_IP, 1, 2, 0x02)); bad[0] = 0x44
    frames.append(eth(bytes(bad)))                                         # header length 16 < 20
    with open(out, "wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B23C4D, 2, 4, 0, 0, 65535, 1))  # nanosecond pcap, Ethernet
        t = 1_764_000_000 * 10**9
        for i, fr in enumerate(frames):
            t += 1_000_000 + rng.randrange(1_000_000)
            f.write(struct.pack("<IIII", t // 10**9, t % 10**9, len(fr), len(fr)))
            f.write(fr)
    print("wrote %d frames to %s" % (len(frames), out))


if __name__ == "__main__":
    main()
