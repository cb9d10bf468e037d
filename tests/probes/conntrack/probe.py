#!/usr/bin/env python3
"""Conntrack probe: sends crafted IPv4 frames into a router namespace and
records, per packet, the ctstate the kernel gave it (mangle PREROUTING
counters) and the conntrack table afterwards (conntrack -L).

Topology (all namespaces created here, deleted at exit):
  nfbE-a (vA, 10.200.0.2) <-veth-> nfbE-r (vR, 10.200.0.1; dummy d0)
Client/server addresses 10.201.x.x are routed by nfbE-r to d0 (a dummy
device drops everything), so nothing ever answers and both directions of a
flow are injected from nfbE-a with spoofed sources.
"""
import ctypes, json, os, socket, struct, subprocess, sys, time

NS_A, NS_R, NS_S = "nfbE-a", "nfbE-r", "nfbE-s"
CLONE_NEWNET = 0x40000000
libc = ctypes.CDLL("libc.so.6", use_errno=True)


def sh(*args, check=True, ns=None, inp=None):
    cmd = (["ip", "netns", "exec", ns] if ns else []) + list(args)
    r = subprocess.run(cmd, input=inp, capture_output=True, text=True)
    if check and r.returncode != 0:
        raise RuntimeError(f"{cmd}: {r.returncode} {r.stderr}")
    return r.stdout


def setup():
    teardown()
    sh("ip", "netns", "add", NS_A)
    sh("ip", "netns", "add", NS_R)
    sh("ip", "link", "add", "vA", "netns", NS_A, "type", "veth", "peer", "name", "vR", "netns", NS_R)
    sh("ip", "addr", "add", "10.200.0.2/24", "dev", "vA", ns=NS_A)
    sh("ip", "link", "set", "vA", "up", ns=NS_A)
    sh("ip", "link", "set", "lo", "up", ns=NS_A)
    sh("ip", "addr", "add", "10.200.0.1/24", "dev", "vR", ns=NS_R)
    sh("ip", "link", "set", "vR", "up", ns=NS_R)
    sh("ip", "link", "set", "lo", "up", ns=NS_R)
    sh("ip", "netns", "add", NS_S)
    sh("ip", "link", "add", "d0", "netns", NS_R, "type", "veth", "peer", "name", "vS", "netns", NS_S)
    sh("ip", "addr", "add", "10.202.0.1/24", "dev", "d0", ns=NS_R)
    sh("ip", "link", "set", "d0", "up", ns=NS_R)
    sh("ip", "addr", "add", "10.202.0.2/24", "dev", "vS", ns=NS_S)
    sh("ip", "link", "set", "vS", "up", ns=NS_S)
    mac_s = sh("cat", "/sys/class/net/vS/address", ns=NS_S).strip()
    sh("ip", "neigh", "add", "10.202.0.2", "lladdr", mac_s, "nud", "permanent", "dev", "d0", ns=NS_R)
    sh("ip", "route", "add", "10.201.0.0/16", "via", "10.202.0.2", "dev", "d0", ns=NS_R)
    sh("iptables-legacy-restore", ns=NS_S, inp="*raw\n:PREROUTING DROP [0:0]\n:OUTPUT DROP [0:0]\nCOMMIT\n")
    for k, v in [("net.ipv4.ip_forward", "1"), ("net.ipv4.conf.all.rp_filter", "0"),
                 ("net.ipv4.conf.default.rp_filter", "0"), ("net.ipv4.conf.vR.rp_filter", "0"),
                 ("net.ipv4.conf.all.send_redirects", "0"), ("net.ipv4.conf.vR.send_redirects", "0"),
                 ("net.ipv4.conf.all.accept_local", "1")]:
        sh("sysctl", "-qw", f"{k}={v}", ns=NS_R)
    # A must not answer anything it might see.
    sh("iptables-legacy-restore", ns=NS_A, inp="*filter\n:INPUT DROP [0:0]\n:FORWARD DROP [0:0]\n:OUTPUT ACCEPT [0:0]\nCOMMIT\n")
    rules = "*mangle\n:PREROUTING ACCEPT [0:0]\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\n"
    for st in ["INVALID", "NEW", "ESTABLISHED", "RELATED", "UNTRACKED"]:
        rules += f"-A PREROUTING -i vR -m conntrack --ctstate {st}\n"
    for st in ["INVALID", "NEW", "ESTABLISHED", "RELATED"]:
        rules += f"-A POSTROUTING -o d0 -m conntrack --ctstate {st}\n"
    rules += "-A PREROUTING -i vR -m conntrack --ctdir ORIGINAL\n-A PREROUTING -i vR -m conntrack --ctdir REPLY\n"
    rules += "COMMIT\n"
    sh("iptables-legacy-restore", ns=NS_R, inp=rules)
    global MAC_R, MAC_A
    MAC_R = bytes.fromhex(sh("cat", "/sys/class/net/vR/address", ns=NS_R).strip().replace(":", ""))
    MAC_A = bytes.fromhex(sh("cat", "/sys/class/net/vA/address", ns=NS_A).strip().replace(":", ""))


def teardown():
    for ns in (NS_A, NS_R, NS_S):
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)


def open_sock():
    own = os.open("/proc/self/ns/net", os.O_RDONLY)
    tgt = os.open(f"/run/netns/{NS_A}", os.O_RDONLY)
    if libc.setns(tgt, CLONE_NEWNET) != 0:
        raise OSError(ctypes.get_errno(), "setns")
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    s.bind(("vA", 0))
    libc.setns(own, CLONE_NEWNET)
    os.close(own)
    os.close(tgt)
    return s


def csum(b):
    if len(b) % 2:
        b += b"\0"
    s = sum(struct.unpack(f"!{len(b)//2}H", b))
    while s >> 16:
        s = (s & 0xffff) + (s >> 16)
    return (~s) & 0xffff


def ip4(a):
    return socket.inet_aton(a)


def ipv4(src, dst, proto, payload, ttl=64, ident=1, bad_l4_csum=False, frag=0x4000):
    if proto in (6, 17):
        ph = ip4(src) + ip4(dst) + struct.pack("!BBH", 0, proto, len(payload))
        off = 16 if proto == 6 else 6
        payload = bytearray(payload)
        payload[off:off + 2] = b"\0\0"
        c = csum(ph + bytes(payload))
        if proto == 17 and c == 0:
            c = 0xffff
        if bad_l4_csum:
            c ^= 0x5555
        payload[off:off + 2] = struct.pack("!H", c)
        payload = bytes(payload)
    elif proto == 1:
        payload = bytearray(payload)
        payload[2:4] = b"\0\0"
        c = csum(bytes(payload))
        if bad_l4_csum:
            c ^= 0x5555
        payload[2:4] = struct.pack("!H", c)
        payload = bytes(payload)
    hdr = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(payload), ident, frag, ttl, proto, 0, ip4(src), ip4(dst))
    hdr = hdr[:10] + struct.pack("!H", csum(hdr)) + hdr[12:]
    return hdr + payload


FL = {"F": 1, "S": 2, "R": 4, "P": 8, "A": 16, "U": 32, "E": 64, "C": 128}


def tcp(sport, dport, seq, ack, flags, win=64240, opts=b"", data=b""):
    f = 0
    for ch in flags:
        f |= FL[ch]
    while len(opts) % 4:
        opts += b"\0"
    doff = 5 + len(opts) // 4
    return struct.pack("!HHIIBBHHH", sport, dport, seq & 0xffffffff, ack & 0xffffffff, doff << 4, f, win, 0, 0) + opts + data


def udp(sport, dport, data=b"", length=None):
    ln = 8 + len(data) if length is None else length
    return struct.pack("!HHHH", sport, dport, ln, 0) + data


def icmp(t, code, rest=b"\0\0\0\0", data=b""):
    return struct.pack("!BBH", t, code, 0) + rest + data


def syn_opts(wscale=7, mss=1460, sack=True):
    o = struct.pack("!BBH", 2, 4, mss)
    if sack:
        o += b"\x04\x02"
    o += b"\x01\x03\x03" + bytes([wscale]) if wscale is not None else b""
    return o


class Probe:
    def __init__(self):
        self.s = open_sock()
        self.prev = self.counters()

    def counters(self):
        out = sh("iptables-legacy-save", "-c", "-t", "mangle", ns=NS_R)
        res = {}
        for line in out.splitlines():
            if line.startswith("[") and "-A PREROUTING" in line:
                pk = int(line[1:line.index(":")])
                if "--ctstate" in line:
                    key = line.split("--ctstate ")[1].split()[0]
                else:
                    key = "dir:" + line.split("--ctdir ")[1].split()[0]
                res[key] = pk
        return res

    def send(self, ippkt):
        frame = MAC_R + MAC_A + b"\x08\x00" + ippkt
        self.s.send(frame)
        time.sleep(0.03)
        now = self.counters()
        delta = {k: now[k] - self.prev.get(k, 0) for k in now if now[k] != self.prev.get(k, 0)}
        self.prev = now
        states = [k for k in delta if not k.startswith("dir:")]
        dirs = [k[4:] for k in delta if k.startswith("dir:")]
        return ",".join(states) or "-", ",".join(dirs) or "-"

    def table(self):
        r = subprocess.run(["ip", "netns", "exec", NS_R, "conntrack", "-L"], capture_output=True, text=True)
        return [l for l in r.stdout.splitlines() if l.strip()]

    def flush(self):
        subprocess.run(["ip", "netns", "exec", NS_R, "conntrack", "-F"], capture_output=True)


if __name__ == "__main__":
    setup()
    try:
        p = Probe()
        print(p.send(ipv4("10.201.1.5", "10.201.2.5", 6, tcp(40000, 80, 1000, 0, "S", opts=syn_opts()))))
        print(p.table())
    finally:
        if "--keep" not in sys.argv:
            teardown()
