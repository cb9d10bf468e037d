#!/usr/bin/env python3
"""Declarative conntrack scenarios: each step is run through the kernel (in
namespaces, see probe.py) and emitted as a C++ gtest line carrying the
kernel's answer, so the unit tests replay exactly the packets the kernel saw.

usage: gen.py tcp|udp|icmp|generic ... > out.inc
"""
import re, sys, time
from probe import *

ADDR = {"C": "10.201.1.5", "S": "10.201.2.5", "M": "10.201.3.1", "X": "10.201.9.9"}


class P:
    """A packet: its bytes and the C++ expression that builds the same bytes."""
    def __init__(self, data, cpp):
        self.data, self.cpp = data, cpp


def opts_cpp(fields):
    items = [f".{k} = {v}" for k, v in fields if v is not None]
    return ", {" + ", ".join(items) + "}" if items else ""


def T(sp, dp, seq, ack, fl, rev=False, win=None, ws=False, sack=None, data=0, bad=False):
    src, dst = ("S", "C") if rev else ("C", "S")
    opts = syn_opts(7) if ws else b""
    if sack:
        opts += b"\x01\x01\x05\x0a" + struct.pack("!II", sack[0], sack[1])
    pkt = ipv4(ADDR[src], ADDR[dst], 6,
               tcp(sp, dp, seq, ack, fl, win=64240 if win is None else win,
                   opts=opts, data=b"x" * data), bad_l4_csum=bad)
    cpp = (f'{"TR" if rev else "T"}({sp}, {dp}, {seq & 0xffffffff}U, {ack & 0xffffffff}U, "{fl}"' +
           opts_cpp([("win", win), ("ws", "true" if ws else None),
                     ("sack_left", f"{sack[0]}U" if sack else None), ("sack_right", f"{sack[1]}U" if sack else None),
                     ("data", data or None), ("bad", "true" if bad else None)]) + ")")
    return P(pkt, cpp)


def U(sp, dp, rev=False, data=0, length=None, bad=False, zero=False):
    src, dst = ("S", "C") if rev else ("C", "S")
    pkt = ipv4(ADDR[src], ADDR[dst], 17, udp(sp, dp, data=b"q" * data, length=length), bad_l4_csum=bad)
    if zero:
        pkt = pkt[:26] + b"\0\0" + pkt[28:]
    cpp = (f'{"UR" if rev else "U"}({sp}, {dp}' +
           opts_cpp([("data", data or None), ("length", length), ("bad", "true" if bad else None),
                     ("zero_checksum", "true" if zero else None)]) + ")")
    return P(pkt, cpp)


def I(t, c, ident, src="C", dst="S", seq=1, bad=False):
    pkt = ipv4(ADDR[src], ADDR[dst], 1, icmp(t, c, struct.pack("!HH", ident, seq), b"p" * 16), bad_l4_csum=bad)
    cpp = (f"I({t}, {c}, {ident}" +
           opts_cpp([("src", None if src == "C" else "k" + src), ("dst", None if dst == "S" else "k" + dst),
                     ("seq", None if seq == 1 else seq), ("bad", "true" if bad else None)]) + ")")
    return P(pkt, cpp)


def E(t, c, inner, src="S", dst="C", bad=False, n=28):
    pkt = ipv4(ADDR[src], ADDR[dst], 1, icmp(t, c, b"\0\0\0\0", inner.data[:n]), bad_l4_csum=bad)
    cpp = (f"E({t}, {c}, {inner.cpp}" +
           opts_cpp([("src", None if src == "S" else "k" + src), ("dst", None if dst == "C" else "k" + dst),
                     ("bad", "true" if bad else None), ("quote", None if n == 28 else n)]) + ")")
    return P(pkt, cpp)


def G(src, dst, proto, n):
    return P(ipv4(ADDR[src], ADDR[dst], proto, b"g" * n), f"G(k{src}, k{dst}, {proto}, {n})")


def tcp_scenarios():
    out = []
    P_ = 40001
    out.append(("HandshakeDataCloseReopen", P_, [
        ("C>S SYN", T(P_, 80, 1000, 0, "S", ws=True)),
        ("S>C SYN/ACK", T(80, P_, 5000, 1001, "SA", rev=True, ws=True)),
        ("C>S ACK", T(P_, 80, 1001, 5001, "A", win=502)),
        ("C>S PSH/ACK 100 bytes", T(P_, 80, 1001, 5001, "PA", win=502, data=100)),
        ("S>C ACK of data", T(80, P_, 5001, 1101, "A", rev=True, win=509)),
        ("C>S FIN/ACK", T(P_, 80, 1101, 5001, "FA", win=502)),
        ("S>C ACK of FIN", T(80, P_, 5001, 1102, "A", rev=True, win=509)),
        ("S>C FIN/ACK", T(80, P_, 5001, 1102, "FA", rev=True, win=509)),
        ("C>S last ACK", T(P_, 80, 1102, 5002, "A", win=502)),
        ("C>S new SYN reopens from TIME_WAIT", T(P_, 80, 90000, 0, "S", ws=True)),
    ]))
    P_ = 40002
    out.append(("LoosePickup", P_, [
        ("C>S ACK, no entry", T(P_, 80, 1001, 5001, "A", win=502)),
        ("C>S PSH/ACK 10", T(P_, 80, 1001, 5001, "PA", win=502, data=10)),
        ("S>C ACK", T(80, P_, 5001, 1011, "A", rev=True, win=509)),
        ("C>S ACK", T(P_, 80, 1011, 5001, "A", win=502)),
        ("C>S data far out of window (liberal)", T(P_, 80, 1011 + 50000000, 5001, "PA", win=502, data=10)),
    ]))
    P_ = 40003
    out.append(("SynThenOriginalAckBeforeSynAck", P_, [
        ("C>S SYN", T(P_, 80, 1000, 0, "S", ws=True)),
        ("C>S ACK", T(P_, 80, 1001, 5001, "A")),
        ("C>S FIN/ACK", T(P_, 80, 1001, 5001, "FA")),
        ("C>S RST kills the unreplied entry", T(P_, 80, 1001, 0, "R")),
    ]))
    P_ = 40004
    out.append(("FlagCombinationsWithoutEntry", P_, [
        ("SYN+FIN", T(P_, 80, 1000, 0, "SF")),
        ("SYN+RST", T(P_, 80, 1000, 0, "SR")),
        ("FIN alone", T(P_, 80, 1000, 0, "F")),
        ("no flags", T(P_, 80, 1000, 0, "")),
        ("FIN+PSH+URG", T(P_, 80, 1000, 0, "FPU")),
        ("SYN+ACK+FIN", T(P_, 80, 1000, 0, "SAF")),
        ("RST+ACK+FIN", T(P_, 80, 1000, 0, "RAF")),
        ("FIN/ACK, no entry", T(P_, 80, 1000, 1, "FA")),
        ("RST, no entry", T(P_, 80, 1000, 0, "R")),
        ("RST/ACK, no entry", T(P_, 80, 1000, 1, "RA")),
        ("SYN/ACK, no entry", T(P_, 80, 1000, 1, "SA")),
        ("SYN+URG opens", T(P_, 80, 1000, 0, "SU")),
    ]))
    P_ = 40005
    out.append(("EcnFlagsAndPshOnly", P_, [
        ("SYN+ECE+CWR", T(P_, 80, 1000, 0, "SEC", ws=True)),
        ("S>C SYN/ACK+ECE", T(80, P_, 5000, 1001, "SAE", rev=True, ws=True)),
        ("C>S PSH without ACK", T(P_, 80, 1001, 0, "P")),
        ("C>S URG+ACK", T(P_, 80, 1001, 5001, "UA")),
    ]))
    P_ = 40006
    out.append(("RstInWindowAfterHandshake", P_, [
        ("C>S SYN", T(P_, 80, 1000, 0, "S", ws=True)),
        ("S>C SYN/ACK", T(80, P_, 5000, 1001, "SA", rev=True, ws=True)),
        ("C>S ACK", T(P_, 80, 1001, 5001, "A", win=502)),
        ("S>C RST seq=5001 (exact)", T(80, P_, 5001, 0, "R", rev=True, win=0)),
        ("C>S ACK after close", T(P_, 80, 1001, 5001, "A", win=502)),
        ("C>S SYN after a RST from the other side is ignored", T(P_, 80, 70000, 0, "S", ws=True)),
    ]))
    P_ = 40007
    out.append(("RstSequenceChecks", P_, [
        ("C>S SYN", T(P_, 80, 1000, 0, "S", ws=True)),
        ("S>C SYN/ACK", T(80, P_, 5000, 1001, "SA", rev=True, ws=True)),
        ("C>S ACK", T(P_, 80, 1001, 5001, "A", win=502)),
        ("C>S ACK again", T(P_, 80, 1001, 5001, "A", win=503)),
        ("S>C RST below the client's max ack", T(80, P_, 4000, 0, "R", rev=True, win=0)),
        ("S>C RST in window, not exact", T(80, P_, 5011, 0, "R", rev=True, win=0)),
        ("S>C RST far out of window", T(80, P_, 5001 + 80000000, 0, "R", rev=True, win=0)),
        ("C>S RST seq=1001 (exact)", T(P_, 80, 1001, 0, "R", win=0)),
        ("C>S SYN after its own RST reopens", T(P_, 80, 77777, 0, "S", ws=True)),
    ]))
    P_ = 40008
    out.append(("RstAnsweringSyn", P_, [
        ("C>S SYN", T(P_, 80, 1000, 0, "S", ws=True)),
        ("S>C RST/ACK seq=0 ack=1001", T(80, P_, 0, 1001, "RA", rev=True, win=0)),
        ("C>S SYN again", T(P_, 80, 1000, 0, "S", ws=True)),
    ]))
    P_ = 40009
    out.append(("Retransmissions", P_, [
        ("C>S SYN", T(P_, 80, 1000, 0, "S", ws=True)),
        2.2,
        ("C>S SYN retransmitted: timeout not renewed", T(P_, 80, 1000, 0, "S", ws=True)),
        ("S>C SYN/ACK", T(80, P_, 5000, 1001, "SA", rev=True, ws=True)),
        ("S>C SYN/ACK retransmitted", T(80, P_, 5000, 1001, "SA", rev=True, ws=True)),
        ("C>S ACK", T(P_, 80, 1001, 5001, "A", win=502)),
        ("C>S data 50", T(P_, 80, 1001, 5001, "PA", win=502, data=50)),
        ("C>S data 50 again 1", T(P_, 80, 1001, 5001, "PA", win=502, data=50)),
        ("C>S data 50 again 2", T(P_, 80, 1001, 5001, "PA", win=502, data=50)),
        ("C>S data 50 again 3", T(P_, 80, 1001, 5001, "PA", win=502, data=50)),
        ("C>S data 50 again 4", T(P_, 80, 1001, 5001, "PA", win=502, data=50)),
        ("S>C ACK 1051", T(80, P_, 5001, 1051, "A", rev=True, win=509)),
        ("S>C zero window ACK", T(80, P_, 5001, 1051, "A", rev=True, win=0)),
        ("C>S ACK", T(P_, 80, 1051, 5001, "A", win=502)),
    ]))
    P_ = 40010
    out.append(("WindowChecksSmallWindows", P_, [
        ("C>S SYN win 1000", T(P_, 80, 1000, 0, "S", win=1000)),
        ("S>C SYN/ACK win 2000", T(80, P_, 5000, 1001, "SA", rev=True, win=2000)),
        ("C>S ACK", T(P_, 80, 1001, 5001, "A", win=1000)),
        ("C>S data 500", T(P_, 80, 1001, 5001, "PA", win=1000, data=500)),
        ("C>S seq 3100 beyond max_end, small overshoot", T(P_, 80, 3100, 5001, "PA", win=1000, data=10)),
        ("C>S seq 2000 in window", T(P_, 80, 2000, 5001, "PA", win=1000, data=10)),
        ("C>S ack 7001 over the server's end", T(P_, 80, 1501, 7001, "A", win=1000)),
        ("C>S old data below the window", T(P_, 80, 1001 - 5000, 5001, "PA", win=1000, data=10)),
        ("C>S ack far below", T(P_, 80, 1501, 5001 - 100000, "A", win=1000)),
        ("S>C ACK 1501", T(80, P_, 5001, 1501, "A", rev=True, win=2000)),
        ("C>S seq 3400 len 1200", T(P_, 80, 3400, 5001, "PA", win=1000, data=1200)),
        ("C>S seq 5600 len 10, overshoot within max_win", T(P_, 80, 5600, 5001, "PA", win=1000, data=10)),
        ("S>C ACK 4600", T(80, P_, 5001, 4600, "A", rev=True, win=2000)),
        ("S>C ACK 4601", T(80, P_, 5001, 4601, "A", rev=True, win=2000)),
        ("S>C ACK 5611 over the client's end", T(80, P_, 5001, 5611, "A", rev=True, win=2000)),
        ("C>S seq 20000 far beyond the window", T(P_, 80, 20000, 5001, "PA", win=1000, data=10)),
        ("C>S FIN far beyond the window", T(P_, 80, 90000, 5001, "FA", win=1000)),
        ("S>C ACK 5610 zero window", T(80, P_, 5001, 5610, "A", rev=True, win=0)),
    ]))
    P_ = 40011
    out.append(("SimultaneousOpen", P_, [
        ("C>S SYN", T(P_, 80, 1000, 0, "S", ws=True)),
        ("S>C SYN", T(80, P_, 5000, 0, "S", rev=True, ws=True)),
        ("C>S SYN/ACK", T(P_, 80, 1000, 5001, "SA", ws=True)),
        ("S>C SYN/ACK", T(80, P_, 5000, 1001, "SA", rev=True, ws=True)),
        ("C>S ACK", T(P_, 80, 1001, 5001, "A", win=502)),
        ("S>C ACK", T(80, P_, 5001, 1001, "A", rev=True, win=502)),
    ]))
    P_ = 40012
    out.append(("SynInEstablishedThenResync", P_, [
        ("C>S SYN", T(P_, 80, 1000, 0, "S", ws=True)),
        ("S>C SYN/ACK", T(80, P_, 5000, 1001, "SA", rev=True, ws=True)),
        ("C>S ACK", T(P_, 80, 1001, 5001, "A", win=502)),
        ("C>S ACK again", T(P_, 80, 1001, 5001, "A", win=503)),
        ("C>S new SYN seq 300000 is ignored", T(P_, 80, 300000, 0, "S", ws=True)),
        ("S>C SYN/ACK answering it resyncs", T(80, P_, 900000, 300001, "SA", rev=True, ws=True)),
        ("C>S ACK", T(P_, 80, 300001, 900001, "A", win=502)),
    ]))
    P_ = 40013
    out.append(("TimeWaitSynFromReplySide", P_, [
        ("C>S SYN", T(P_, 80, 1000, 0, "S", ws=True)),
        ("S>C SYN/ACK", T(80, P_, 5000, 1001, "SA", rev=True, ws=True)),
        ("C>S ACK", T(P_, 80, 1001, 5001, "A", win=502)),
        ("C>S FIN/ACK", T(P_, 80, 1001, 5001, "FA", win=502)),
        ("S>C FIN/ACK", T(80, P_, 5001, 1002, "FA", rev=True, win=509)),
        ("C>S ACK", T(P_, 80, 1002, 5002, "A", win=502)),
        ("S>C SYN reopens with the roles switched", T(80, P_, 99000, 0, "S", rev=True, ws=True)),
    ]))
    P_ = 40014
    out.append(("SynSentRejects", P_, [
        ("C>S SYN", T(P_, 80, 1000, 0, "S", ws=True)),
        ("C>S FIN/ACK", T(P_, 80, 1001, 1, "FA")),
        ("C>S SYN/ACK", T(P_, 80, 1000, 1, "SA")),
        ("S>C ACK is ignored but counts as a reply", T(80, P_, 5000, 1001, "A", rev=True)),
        ("C>S ACK", T(P_, 80, 1001, 5000, "A")),
    ]))
    for P_, name, ws_reply in ((40016, "WindowScaledBothWays", True), (40017, "WindowScaleOnlyOneSide", False)):
        out.append((name, P_, [
            ("C>S SYN win 1000 wscale 7", T(P_, 80, 1000, 0, "S", win=1000, ws=True)),
            ("S>C SYN/ACK win 100", T(80, P_, 5000, 1001, "SA", rev=True, win=100, ws=ws_reply)),
            ("C>S ACK win 1000", T(P_, 80, 1001, 5001, "A", win=1000)),
            ("S>C ACK win 10", T(80, P_, 5001, 1001, "A", rev=True, win=10)),
            ("C>S seq 2200 len 10", T(P_, 80, 2200, 5001, "PA", win=1000, data=10)),
        ]))
    P_ = 40018
    out.append(("SackBlocks", P_, [
        ("C>S SYN", T(P_, 80, 1000, 0, "S", ws=True)),
        ("S>C SYN/ACK", T(80, P_, 5000, 1001, "SA", rev=True, ws=True)),
        ("C>S ACK", T(P_, 80, 1001, 5001, "A", win=502)),
        ("C>S data 100", T(P_, 80, 1001, 5001, "PA", win=502, data=100)),
        ("S>C dup ACK with SACK 1051-1101", T(80, P_, 5001, 1001, "A", rev=True, win=509, sack=(1051, 1101))),
        ("S>C dup ACK with SACK 1051-1201", T(80, P_, 5001, 1001, "A", rev=True, win=509, sack=(1051, 1201))),
    ]))
    P_ = 40019
    out.append(("ChallengeAckInLastAck", P_, [
        ("C>S SYN", T(P_, 80, 1000, 0, "S", ws=True)),
        ("S>C SYN/ACK", T(80, P_, 5000, 1001, "SA", rev=True, ws=True)),
        ("C>S ACK", T(P_, 80, 1001, 5001, "A", win=502)),
        ("C>S FIN/ACK", T(P_, 80, 1001, 5001, "FA", win=502)),
        ("S>C FIN/ACK", T(80, P_, 5001, 1002, "FA", rev=True, win=509)),
        ("C>S SYN in LAST_ACK", T(P_, 80, 600000, 0, "S", ws=True)),
        ("S>C challenge ACK", T(80, P_, 5002, 1002, "A", rev=True, win=509)),
        ("C>S last ACK", T(P_, 80, 1002, 5002, "A", win=502)),
    ]))
    P_ = 40020
    out.append(("OutOfWindowFinThenRst", P_, [
        ("C>S SYN", T(P_, 80, 1000, 0, "S", ws=True)),
        ("S>C SYN/ACK", T(80, P_, 5000, 1001, "SA", rev=True, ws=True)),
        ("C>S ACK", T(P_, 80, 1001, 5001, "A", win=502)),
        ("C>S ACK again", T(P_, 80, 1001, 5001, "A", win=503)),
        ("C>S FIN far out of window", T(P_, 80, 1001 + 90000000, 5001, "FA", win=502)),
        ("S>C RST far out of window", T(80, P_, 5001 + 90000000, 0, "R", rev=True, win=0)),
    ]))
    P_ = 40021
    out.append(("ReplySideSpeaksFirst", P_, [
        ("S>C ACK picked up", T(80, P_, 5001, 1001, "A", rev=True, win=509)),
        ("C>S ACK", T(P_, 80, 1001, 5001, "A", win=502)),
        ("C>S FIN/ACK", T(P_, 80, 1001, 5001, "FA", win=502)),
        ("S>C FIN/ACK", T(80, P_, 5001, 1002, "FA", rev=True, win=509)),
        ("C>S ACK", T(P_, 80, 1002, 5002, "A", win=502)),
        ("S>C RST in TIME_WAIT", T(80, P_, 5002, 0, "R", rev=True, win=0)),
    ]))
    P_ = 40015
    out.append(("Checksums", P_, [
        ("C>S SYN bad checksum", T(P_, 80, 1000, 0, "S", ws=True, bad=True)),
        ("C>S SYN", T(P_, 80, 1000, 0, "S", ws=True)),
        ("S>C SYN/ACK bad checksum", T(80, P_, 5000, 1001, "SA", rev=True, ws=True, bad=True)),
        ("S>C SYN/ACK", T(80, P_, 5000, 1001, "SA", rev=True, ws=True)),
    ]))
    return out


def udp_scenarios():
    out = []
    P_ = 41001
    out.append(("UdpStreamAfterTwoSeconds", P_, [
        ("C>S", U(P_, 53, data=20)),
        ("C>S again", U(P_, 53, data=20)),
        ("S>C reply", U(53, P_, rev=True, data=40)),
        ("C>S after the reply, before 2 s", U(P_, 53, data=20)),
        2.2,
        ("C>S after 2 s", U(P_, 53, data=20)),
        ("S>C", U(53, P_, rev=True, data=40)),
    ]))
    P_ = 41002
    out.append(("UdpReplyAfterTwoSeconds", P_, [
        ("C>S", U(P_, 53, data=20)),
        2.2,
        ("S>C first reply after 2 s", U(53, P_, rev=True, data=40)),
        ("S>C again", U(53, P_, rev=True, data=40)),
    ]))
    P_ = 41003
    out.append(("UdpMalformed", P_, [
        ("bad checksum", U(P_, 53, data=20, bad=True)),
        ("length field beyond the packet", U(P_, 53, data=20, length=40)),
        ("length field below 8", U(P_, 53, data=20, length=7)),
        ("length field below the payload", U(P_, 53, data=20, length=12)),
    ]))
    P_ = 41004
    out.append(("UdpChecksumZero", P_, [
        ("checksum 0 means none", U(P_, 53, data=21, zero=True)),
        ("bad checksum on an existing flow", U(P_, 53, data=20, bad=True)),
        ("S>C bad checksum reply", U(53, P_, rev=True, data=20, bad=True)),
    ]))
    return out


def icmp_scenarios():
    out = []
    P_ = 777
    out.append(("IcmpEcho", P_, [
        ("C>S echo request", I(8, 0, P_)),
        ("C>S echo request seq 2", I(8, 0, P_, seq=2)),
        ("S>C echo reply", I(0, 0, P_, src="S", dst="C")),
        ("C>S echo request seq 3", I(8, 0, P_, seq=3)),
        ("S>C echo reply bad checksum", I(0, 0, P_, src="S", dst="C", bad=True)),
    ]))
    P_ = 778
    out.append(("IcmpWithoutEntry", P_, [
        ("S>C echo reply without request", I(0, 0, P_, src="S", dst="C")),
        ("C>S timestamp request", I(13, 0, P_)),
        ("C>S router advertisement (9)", I(9, 0, P_)),
        ("C>S type 19", I(19, 0, P_)),
        ("C>S address mask reply without request", I(18, 0, P_)),
        ("C>S echo request code 1", I(8, 1, P_ + 1)),
        ("S>C echo reply code 0 to it", I(0, 0, P_ + 1, src="S", dst="C")),
        ("S>C echo reply code 1 to it", I(0, 1, P_ + 1, src="S", dst="C")),
        ("C>S echo request bad checksum", I(8, 0, P_ + 2, bad=True)),
    ]))
    P_ = 41005
    orig = U(P_, 53, data=20)
    out.append(("IcmpErrorsAboutUdpFlow", P_, [
        ("C>S udp", orig),
        ("S>C port unreachable", E(3, 3, orig)),
        ("M>C net unreachable from a middle box", E(3, 0, orig, src="M")),
        ("S>X unreachable, outer destination not the client", E(3, 3, orig, dst="X")),
        ("S>C unreachable bad checksum", E(3, 3, orig, bad=True)),
        ("S>C time exceeded", E(11, 0, orig)),
        ("S>C unreachable quoting 2 bytes of UDP", E(3, 3, orig, n=22)),
        ("C>S unreachable about a reply packet", E(3, 3, U(53, P_, rev=True, data=4), src="C", dst="S")),
        ("S>C unreachable about an unknown flow", E(3, 3, U(P_ + 1, 53, data=4))),
        ("S>C redirect about the flow", E(5, 1, orig)),
        ("S>C parameter problem about the flow", E(12, 0, orig)),
        ("S>C source quench about the flow", E(4, 0, orig)),
    ]))
    P_ = 779
    ping = I(8, 0, P_)
    out.append(("IcmpErrorAboutPing", P_, [
        ("C>S echo", ping),
        ("M>C time exceeded quoting the echo", E(11, 0, ping, src="M")),
        ("M>S time exceeded quoting an echo reply", E(11, 0, I(0, 0, P_, src="S", dst="C"), src="M", dst="S")),
    ]))
    P_ = 41006
    syn = T(P_, 80, 1000, 0, "S", ws=True)
    out.append(("IcmpErrorAboutTcpFlow", P_, [
        ("C>S SYN", syn),
        ("S>C port unreachable quoting the SYN", E(3, 3, syn)),
        ("C>S SYN retransmitted", syn),
    ]))
    return out


def generic_scenarios():
    return [("GenericProtocol", 0, [
        ("C>S proto 253", G("C", "S", 253, 12)),
        ("C>S proto 253 again", G("C", "S", 253, 12)),
        ("S>C proto 253", G("S", "C", 253, 12)),
        ("C>S proto 253 after the reply", G("C", "S", 253, 12)),
    ])]


def cstr(s):
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def main():
    which = sys.argv[1:]
    setup()
    lines = []
    try:
        p = Probe()
        for w in which:
            for name, port, steps in globals()[w + "_scenarios"]():
                p.flush()
                time.sleep(0.05)
                p.prev = p.counters()
                lines.append(f"TEST(KernelSequences, {name}) {{")
                lines.append(f"  Replay r({port});")
                for st in steps:
                    if isinstance(st, (int, float)):
                        time.sleep(st)
                        lines.append(f"  r.sleep({st});")
                        continue
                    desc, pkt = st
                    state, d = p.send(pkt.data)
                    tbl = p.table()
                    if port:
                        tbl = [l for l in tbl if re.search(rf"(sport|dport|id)={port} ", l)]
                    lines.append(f"  r.step({cstr(desc)}, {pkt.cpp},")
                    lines.append(f"         {cstr(state)}, {cstr(d)},")
                    lines.append(f"         {cstr(' || '.join(tbl))});")
                lines.append("}")
                lines.append("")
    finally:
        teardown()
    print("\n".join(lines))


if __name__ == "__main__":
    main()
