from probe import *
C, S = "10.201.1.5", "10.201.2.5"
setup()
try:
    sh("iptables-legacy", "-A", "FORWARD", "-p", "tcp", "--dport", "9999", "-j", "DROP", ns=NS_R)
    sh("iptables-legacy", "-A", "FORWARD", "-p", "tcp", "--sport", "9998", "-j", "DROP", ns=NS_R)
    p = Probe()
    print("SYN to dropped port:", p.send(ipv4(C, S, 6, tcp(40100, 9999, 1000, 0, "S", opts=syn_opts()))), p.table())
    print("SYN to 9998:", p.send(ipv4(C, S, 6, tcp(40101, 9998, 1000, 0, "S", opts=syn_opts()))), p.table())
    print("SYN/ACK from 9998 dropped:", p.send(ipv4(S, C, 6, tcp(9998, 40101, 5000, 1001, "SA", opts=syn_opts()))), p.table())
finally:
    teardown()
