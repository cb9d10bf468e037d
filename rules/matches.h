// The match modules: one header each under rules/matches/ (see module.h
// for what one holds), and the registry that makes them known. To add a
// module, write its header and add it to both lists below.
#pragma once

#include "rules/matches/addrtype.h"
#include "rules/matches/comment.h"
#include "rules/matches/connlimit.h"
#include "rules/matches/connmark.h"
#include "rules/matches/conntrack.h"
#include "rules/matches/dscp.h"
#include "rules/matches/ecn.h"
#include "rules/matches/hashlimit.h"
#include "rules/matches/icmp.h"
#include "rules/matches/iprange.h"
#include "rules/matches/length.h"
#include "rules/matches/limit.h"
#include "rules/matches/mac.h"
#include "rules/matches/mark.h"
#include "rules/matches/multiport.h"
#include "rules/matches/nfacct.h"
#include "rules/matches/physdev.h"
#include "rules/matches/pkttype.h"
#include "rules/matches/ports.h"
#include "rules/matches/recent.h"
#include "rules/matches/sctp.h"
#include "rules/matches/set.h"
#include "rules/matches/state.h"
#include "rules/matches/statistic.h"
#include "rules/matches/string.h"
#include "rules/matches/tcp.h"
#include "rules/matches/tos.h"
#include "rules/matches/ttl.h"
#include "rules/matches/udp.h"

namespace nfb {

/// Every match module, in the order of the Match variant (and of the
/// reader's getopt table, which decides which module an ambiguous option
/// prefix resolves to).
using MatchModules =
    TypeList<TcpMatch, UdpMatch, IcmpMatch, MultiportMatch, ConntrackMatch, StateMatch, AddrtypeMatch, CommentMatch,
             MarkMatch, ConnmarkMatch, IprangeMatch, StringMatch, LimitMatch, StatisticMatch, LengthMatch,
             PkttypeMatch, MacMatch, PortsMatch, RecentMatch, TtlMatch, TosMatch, DscpMatch, EcnMatch,
             NfacctMatch, SctpMatch, HashlimitMatch, ConnlimitMatch, SetMatch, PhysdevMatch>;

/// One module match of a rule (`-m NAME ...`), in rule order.
using Match = VariantOf<MatchModules>::type;

}  // namespace nfb
