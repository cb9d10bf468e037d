#!/usr/bin/env python3
"""Runs packet sequences through the kernel and prints, per packet, the
ctstate (mangle PREROUTING), the direction and the flow's conntrack -L line."""
import sys, time
from probe import *

C, S, M = "10.201.1.5", "10.201.2.5", "10.201.3.1"


def T(sp, dp, seq, ack, fl, src=C, dst=S, **kw):
    bad = kw.pop("bad", False)
    return ipv4(src, dst, 6, tcp(sp, dp, seq, ack, fl, **kw), bad_l4_csum=bad)


def flow_lines(p, port):
    if port == 0:
        return p.table()
    return [l for l in p.table() if f"sport={port} " in l or f"dport={port} " in l or f"id={port} " in l]


CPP = []


def run(p, name, steps, port):
    print(f"== {name}")
    CPP.append(f"// == {name}")
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
        print(f"{i:3} {desc:42} {state:12} {d:9} | " + (" || ".join(lines) if lines else "(no entry)"))
        CPP.append(f'      {{"{state}", "{d}", "' + " || ".join(lines) + f'"}},  // {desc}')


def tcp_scenarios(p):
    ws = syn_opts(7)
    # --- 3-way handshake, data, FIN close, reopen from TIME_WAIT
    P = 40001
    run(p, "handshake, data, close, reopen", [
        ("C>S SYN", T(P, 80, 1000, 0, "S", opts=ws)),
        ("S>C SYN/ACK", T(80, P, 5000, 1001, "SA", src=S, dst=C, opts=ws)),
        ("C>S ACK", T(P, 80, 1001, 5001, "A", win=502)),
        ("C>S PSH/ACK 100 bytes", T(P, 80, 1001, 5001, "PA", win=502, data=b"x" * 100)),
        ("S>C ACK of data", T(80, P, 5001, 1101, "A", src=S, dst=C, win=509)),
        ("C>S FIN/ACK", T(P, 80, 1101, 5001, "FA", win=502)),
        ("S>C ACK of FIN", T(80, P, 5001, 1102, "A", src=S, dst=C, win=509)),
        ("S>C FIN/ACK", T(80, P, 5001, 1102, "FA", src=S, dst=C, win=509)),
        ("C>S last ACK", T(P, 80, 1102, 5002, "A", win=502)),
        ("C>S new SYN (reopen from TIME_WAIT)", T(P, 80, 90000, 0, "S", opts=ws)),
    ], P)
    P = 40002
    run(p, "loose pickup", [
        ("C>S ACK (no entry)", T(P, 80, 1001, 5001, "A", win=502)),
        ("C>S PSH/ACK 10", T(P, 80, 1001, 5001, "PA", win=502, data=b"y" * 10)),
        ("S>C ACK", T(80, P, 5001, 1011, "A", src=S, dst=C, win=509)),
        ("C>S ACK", T(P, 80, 1011, 5001, "A", win=502)),
        ("C>S far out-of-window data (liberal)", T(P, 80, 1011 + 50000000, 5001, "PA", win=502, data=b"z" * 10)),
    ], P)
    P = 40003
    run(p, "SYN then original ACK before SYN/ACK", [
        ("C>S SYN", T(P, 80, 1000, 0, "S", opts=ws)),
        ("C>S ACK", T(P, 80, 1001, 5001, "A")),
        ("C>S FIN/ACK", T(P, 80, 1001, 5001, "FA")),
        ("C>S RST", T(P, 80, 1001, 0, "R")),
    ], P)
    P = 40004
    run(p, "invalid flag combinations, no entry", [
        ("SYN+FIN", T(P, 80, 1000, 0, "SF")),
        ("SYN+RST", T(P, 80, 1000, 0, "SR")),
        ("FIN alone", T(P, 80, 1000, 0, "F")),
        ("no flags", T(P, 80, 1000, 0, "")),
        ("FIN+PSH+URG", T(P, 80, 1000, 0, "FPU")),
        ("SYN+ACK+FIN", T(P, 80, 1000, 0, "SAF")),
        ("RST+ACK+FIN", T(P, 80, 1000, 0, "RAF")),
        ("FIN/ACK (valid flags, no entry)", T(P, 80, 1000, 1, "FA")),
        ("RST (valid flags, no entry)", T(P, 80, 1000, 0, "R")),
        ("RST/ACK (no entry)", T(P, 80, 1000, 1, "RA")),
        ("SYN/ACK (no entry)", T(P, 80, 1000, 1, "SA")),
        ("SYN+URG (valid, creates)", T(P, 80, 1000, 0, "SU")),
    ], P)
    P = 40005
    run(p, "SYN+ECE+CWR, PSH only", [
        ("SYN+ECE+CWR", T(P, 80, 1000, 0, "SEC", opts=ws)),
        ("S>C SYN/ACK+ECE", T(80, P, 5000, 1001, "SAE", src=S, dst=C, opts=ws)),
        ("C>S PSH only (no ACK)", T(P, 80, 1001, 0, "P")),
        ("C>S URG+ACK", T(P, 80, 1001, 5001, "UA")),
    ], P)
    P = 40006
    run(p, "RST in window after handshake", [
        ("C>S SYN", T(P, 80, 1000, 0, "S", opts=ws)),
        ("S>C SYN/ACK", T(80, P, 5000, 1001, "SA", src=S, dst=C, opts=ws)),
        ("C>S ACK", T(P, 80, 1001, 5001, "A", win=502)),
        ("S>C RST seq=5001 (exact)", T(80, P, 5001, 0, "R", src=S, dst=C, win=0)),
        ("C>S ACK after close", T(P, 80, 1001, 5001, "A", win=502)),
        ("C>S SYN after RST from other side", T(P, 80, 70000, 0, "S", opts=ws)),
    ], P)
    P = 40007
    run(p, "RST not exact / below / out of window", [
        ("C>S SYN", T(P, 80, 1000, 0, "S", opts=ws)),
        ("S>C SYN/ACK", T(80, P, 5000, 1001, "SA", src=S, dst=C, opts=ws)),
        ("C>S ACK", T(P, 80, 1001, 5001, "A", win=502)),
        ("C>S ACK again (assure)", T(P, 80, 1001, 5001, "A", win=503)),
        ("S>C RST seq below maxack (4000)", T(80, P, 4000, 0, "R", src=S, dst=C, win=0)),
        ("S>C RST seq 5011 (in window, not exact)", T(80, P, 5011, 0, "R", src=S, dst=C, win=0)),
        ("S>C RST seq far out of window", T(80, P, 5001 + 80000000, 0, "R", src=S, dst=C, win=0)),
        ("C>S RST seq=1001 (exact)", T(P, 80, 1001, 0, "R", win=0)),
        ("C>S SYN after own RST (reopen)", T(P, 80, 77777, 0, "S", opts=ws)),
    ], P)
    P = 40008
    run(p, "RST answering SYN (no reply seen)", [
        ("C>S SYN", T(P, 80, 1000, 0, "S", opts=ws)),
        ("S>C RST/ACK seq=0 ack=1001", T(80, P, 0, 1001, "RA", src=S, dst=C, win=0)),
        ("C>S SYN again", T(P, 80, 1000, 0, "S", opts=ws)),
    ], P)
    P = 40009
    run(p, "retransmissions", [
        ("C>S SYN", T(P, 80, 1000, 0, "S", opts=ws)),
        2.2,
        ("C>S SYN retransmit", T(P, 80, 1000, 0, "S", opts=ws)),
        ("S>C SYN/ACK", T(80, P, 5000, 1001, "SA", src=S, dst=C, opts=ws)),
        ("S>C SYN/ACK retransmit", T(80, P, 5000, 1001, "SA", src=S, dst=C, opts=ws)),
        ("C>S ACK", T(P, 80, 1001, 5001, "A", win=502)),
        ("C>S data 50", T(P, 80, 1001, 5001, "PA", win=502, data=b"d" * 50)),
        ("C>S data 50 retransmit", T(P, 80, 1001, 5001, "PA", win=502, data=b"d" * 50)),
        ("C>S data 50 retransmit 2", T(P, 80, 1001, 5001, "PA", win=502, data=b"d" * 50)),
        ("C>S data 50 retransmit 3", T(P, 80, 1001, 5001, "PA", win=502, data=b"d" * 50)),
        ("C>S data 50 retransmit 4", T(P, 80, 1001, 5001, "PA", win=502, data=b"d" * 50)),
        ("S>C ACK 1051", T(80, P, 5001, 1051, "A", src=S, dst=C, win=509)),
        ("S>C window 0 ACK", T(80, P, 5001, 1051, "A", src=S, dst=C, win=0)),
        ("C>S ACK", T(P, 80, 1051, 5001, "A", win=502)),
    ], P)
    P = 40010
    run(p, "window checks, no scaling, small windows", [
        ("C>S SYN win 1000", T(P, 80, 1000, 0, "S", win=1000)),
        ("S>C SYN/ACK win 2000", T(80, P, 5000, 1001, "SA", src=S, dst=C, win=2000)),
        ("C>S ACK", T(P, 80, 1001, 5001, "A", win=1000)),
        ("C>S data 500", T(P, 80, 1001, 5001, "PA", win=1000, data=b"a" * 500)),
        ("C>S data seq beyond maxend (3100)", T(P, 80, 3100, 5001, "PA", win=1000, data=b"a" * 10)),
        ("C>S data seq in window (2000)", T(P, 80, 2000, 5001, "PA", win=1000, data=b"a" * 10)),
        ("C>S ACK over upper bound (ack 7001)", T(P, 80, 1501, 7001, "A", win=1000)),
        ("C>S old data (seq -5000)", T(P, 80, 1001 - 5000, 5001, "PA", win=1000, data=b"a" * 10)),
        ("C>S ack far below (ack -100000)", T(P, 80, 1501, 5001 - 100000, "A", win=1000)),
        ("S>C ACK 1501", T(80, P, 5001, 1501, "A", src=S, dst=C, win=2000)),
        ("C>S seq 3400 len 1200 (overshoot<maxwin)", T(P, 80, 3400, 5001, "PA", win=1000, data=b"a" * 1200)),
        ("C>S seq 5600 len 10 (overshoot>maxwin)", T(P, 80, 5600, 5001, "PA", win=1000, data=b"a" * 10)),
        ("S>C ACK 4600", T(80, P, 5001, 4600, "A", src=S, dst=C, win=2000)),
        ("S>C ACK 4601 (over upper bound)", T(80, P, 5001, 4601, "A", src=S, dst=C, win=2000)),
        ("S>C ACK 5611 (over upper bound)", T(80, P, 5001, 5611, "A", src=S, dst=C, win=2000)),
        ("C>S seq 20000 len 10 (far beyond)", T(P, 80, 20000, 5001, "PA", win=1000, data=b"a" * 10)),
        ("C>S FIN far beyond window", T(P, 80, 90000, 5001, "FA", win=1000)),
        ("S>C ACK 5610 win 0", T(80, P, 5001, 5610, "A", src=S, dst=C, win=0)),
    ], P)
    P = 40011
    run(p, "simultaneous open", [
        ("C>S SYN", T(P, 80, 1000, 0, "S", opts=ws)),
        ("S>C SYN", T(80, P, 5000, 0, "S", src=S, dst=C, opts=ws)),
        ("C>S SYN/ACK", T(P, 80, 1000, 5001, "SA", opts=ws)),
        ("S>C SYN/ACK", T(80, P, 5000, 1001, "SA", src=S, dst=C, opts=ws)),
        ("C>S ACK", T(P, 80, 1001, 5001, "A", win=502)),
        ("S>C ACK", T(80, P, 5001, 1001, "A", src=S, dst=C, win=502)),
    ], P)
    P = 40012
    run(p, "SYN in ESTABLISHED, resync via SYN/ACK", [
        ("C>S SYN", T(P, 80, 1000, 0, "S", opts=ws)),
        ("S>C SYN/ACK", T(80, P, 5000, 1001, "SA", src=S, dst=C, opts=ws)),
        ("C>S ACK", T(P, 80, 1001, 5001, "A", win=502)),
        ("C>S ACK", T(P, 80, 1001, 5001, "A", win=503)),
        ("C>S new SYN seq 300000", T(P, 80, 300000, 0, "S", opts=ws)),
        ("S>C SYN/ACK acking new SYN", T(80, P, 900000, 300001, "SA", src=S, dst=C, opts=ws)),
        ("C>S ACK", T(P, 80, 300001, 900001, "A", win=502)),
    ], P)
    P = 40013
    run(p, "TIME_WAIT, SYN from reply side", [
        ("C>S SYN", T(P, 80, 1000, 0, "S", opts=ws)),
        ("S>C SYN/ACK", T(80, P, 5000, 1001, "SA", src=S, dst=C, opts=ws)),
        ("C>S ACK", T(P, 80, 1001, 5001, "A", win=502)),
        ("C>S FIN/ACK", T(P, 80, 1001, 5001, "FA", win=502)),
        ("S>C FIN/ACK", T(80, P, 5001, 1002, "FA", src=S, dst=C, win=509)),
        ("C>S ACK", T(P, 80, 1002, 5002, "A", win=502)),
        ("S>C SYN (role switch)", T(80, P, 99000, 0, "S", src=S, dst=C, opts=ws)),
    ], P)
    P = 40014
    run(p, "FIN in SYN_SENT, SYN/ACK from client, reply ACK in SYN_SENT", [
        ("C>S SYN", T(P, 80, 1000, 0, "S", opts=ws)),
        ("C>S FIN/ACK", T(P, 80, 1001, 1, "FA")),
        ("C>S SYN/ACK", T(P, 80, 1000, 1, "SA")),
        ("S>C ACK (sIG)", T(80, P, 5000, 1001, "A", src=S, dst=C)),
        ("C>S ACK after reply seen", T(P, 80, 1001, 5000, "A")),
    ], P)
    P = 40015
    run(p, "checksums", [
        ("C>S SYN bad checksum", T(P, 80, 1000, 0, "S", opts=ws, bad=True)),
        ("C>S SYN", T(P, 80, 1000, 0, "S", opts=ws)),
        ("S>C SYN/ACK bad checksum", T(80, P, 5000, 1001, "SA", src=S, dst=C, opts=ws, bad=True)),
        ("S>C SYN/ACK", T(80, P, 5000, 1001, "SA", src=S, dst=C, opts=ws)),
    ], P)


def udp_scenarios(p):
    P = 41001
    U = lambda sp, dp, src=C, dst=S, bad=False, **kw: ipv4(src, dst, 17, udp(sp, dp, **kw), bad_l4_csum=bad)
    run(p, "udp both ways, stream after 2 s", [
        ("C>S", U(P, 53, data=b"q" * 20)),
        ("C>S again", U(P, 53, data=b"q" * 20)),
        ("S>C reply", U(53, P, src=S, dst=C, data=b"r" * 40)),
        ("C>S after reply (<2s)", U(P, 53, data=b"q" * 20)),
        2.2,
        ("C>S after 2s", U(P, 53, data=b"q" * 20)),
        ("S>C", U(53, P, src=S, dst=C, data=b"r" * 40)),
    ], P)
    P = 41002
    run(p, "udp reply after 2s", [
        ("C>S", U(P, 53, data=b"q" * 20)),
        2.2,
        ("S>C reply after 2s", U(53, P, src=S, dst=C, data=b"r" * 40)),
        ("S>C again", U(53, P, src=S, dst=C, data=b"r" * 40)),
    ], P)
    P = 41003
    run(p, "udp malformed", [
        ("bad checksum", U(P, 53, data=b"q" * 20, bad=True)),
        ("length field > payload", ipv4(C, S, 17, udp(P, 53, data=b"q" * 20, length=40))),
        ("length field < 8", ipv4(C, S, 17, udp(P, 53, data=b"q" * 20, length=7))),
        ("length field < payload (cksum over all)", ipv4(C, S, 17, udp(P, 53, data=b"q" * 20, length=12))),
    ], P)
    P = 41004
    raw = ipv4(C, S, 17, udp(P, 53, data=b"q" * 21))
    run(p, "udp checksum zero", [
        ("checksum 0 (none)", raw[:26] + b"\0\0" + raw[28:]),
        ("bad checksum on existing flow", U(P, 53, data=b"q" * 20, bad=True)),
        ("S>C bad checksum reply", U(53, P, src=S, dst=C, data=b"q" * 20, bad=True)),
    ], P)


def icmp_scenarios(p):
    I = lambda t, c, ident, src=C, dst=S, bad=False, seq=1: ipv4(src, dst, 1, icmp(t, c, struct.pack("!HH", ident, seq), b"p" * 16), bad_l4_csum=bad)
    P = 777
    run(p, "echo", [
        ("C>S echo request", I(8, 0, P)),
        ("C>S echo request seq 2", I(8, 0, P, seq=2)),
        ("S>C echo reply", I(0, 0, P, src=S, dst=C)),
        ("C>S echo request seq 3", I(8, 0, P, seq=3)),
        ("S>C echo reply bad checksum", I(0, 0, P, src=S, dst=C, bad=True)),
    ], P)
    P = 778
    run(p, "icmp no entry", [
        ("S>C echo reply, no request", I(0, 0, P, src=S, dst=C)),
        ("C>S timestamp request", I(13, 0, P)),
        ("C>S router advert (9)", I(9, 0, P)),
        ("C>S type 19", I(19, 0, P)),
        ("C>S type 18 (mask reply, no req)", I(18, 0, P)),
        ("C>S echo request code 1", I(8, 1, P + 1)),
        ("S>C echo reply code 0 to it", I(0, 0, P + 1, src=S, dst=C)),
        ("S>C echo reply code 1 to it", I(0, 1, P + 1, src=S, dst=C)),
        ("C>S echo request bad checksum", I(8, 0, P + 2, bad=True)),
    ], P)
    # ICMP errors
    P = 41005
    orig = ipv4(C, S, 17, udp(P, 53, data=b"q" * 20))
    def err(t, c, inner, src=S, dst=C, bad=False, n=28):
        return ipv4(src, dst, 1, icmp(t, c, b"\0\0\0\0", inner[:n]), bad_l4_csum=bad)
    run(p, "icmp errors about a udp flow", [
        ("C>S udp", orig),
        ("S>C port unreachable (inner C>S)", err(3, 3, orig)),
        ("M>C net unreachable (middle box)", err(3, 0, orig, src=M)),
        ("S>X unreachable, outer dst not C", err(3, 3, orig, dst="10.201.9.9")),
        ("S>C unreachable bad checksum", err(3, 3, orig, bad=True)),
        ("S>C time exceeded", err(11, 0, orig)),
        ("S>C unreach inner only 2 L4 bytes", err(3, 3, orig, n=22)),
        ("C>S unreach about reply pkt (inner S>C)", err(3, 3, ipv4(S, C, 17, udp(53, P, data=b"r" * 4)), src=C, dst=S)),
        ("S>C unreach about unknown flow", err(3, 3, ipv4(C, S, 17, udp(P + 1, 53, data=b"q" * 4)))),
        ("S>C redirect (5) about flow", err(5, 1, orig)),
        ("S>C param problem (12) about flow", err(12, 0, orig)),
        ("S>C source quench (4) about flow", err(4, 0, orig)),
    ], P)
    P = 779
    ping = I(8, 0, P)
    run(p, "icmp error about a ping", [
        ("C>S echo", ping),
        ("M>C time exceeded (inner echo)", err(11, 0, ping, src=M)),
        ("M>C time exceeded (inner echo reply)", err(11, 0, I(0, 0, P, src=S, dst=C), src=M, dst=S)),
    ], P)
    P = 41006
    syn = T(P, 80, 1000, 0, "S", opts=syn_opts(7))
    run(p, "icmp error about a tcp flow", [
        ("C>S SYN", syn),
        ("S>C port unreachable (inner SYN)", err(3, 3, syn)),
        ("C>S SYN retransmit", syn),
    ], P)


def generic_scenarios(p):
    P = 0
    run(p, "generic protocol 253", [
        ("C>S proto 253", ipv4(C, S, 253, b"g" * 12)),
        ("C>S proto 253 again", ipv4(C, S, 253, b"g" * 12)),
        ("S>C proto 253", ipv4(S, C, 253, b"g" * 12)),
        ("C>S proto 253 after reply", ipv4(C, S, 253, b"g" * 12)),
    ], P)


if __name__ == "__main__":
    setup()
    try:
        p = Probe()
        which = sys.argv[1:] or ["tcp", "udp", "icmp", "generic"]
        for w in which:
            globals()[w + "_scenarios"](p)
    finally:
        teardown()
        open("expect_" + "_".join(which) + ".inc", "w").write("\n".join(CPP) + "\n")
