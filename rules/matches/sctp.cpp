// -m sctp: option parsing and printing (libxt_sctp's).
#include "rules/matches/sctp.h"

namespace nfb {

namespace {

struct ChunkName {
  const char* name;
  uint8_t type;
  const char* valid_flags;  // letters for bits 7..0, '-' where none
};
// In the order iptables prints them (by type number).
constexpr ChunkName kChunkNames[] = {
    {"DATA", 0, "----IUBE"},          {"INIT", 1, "--------"},         {"INIT_ACK", 2, "--------"},
    {"SACK", 3, "--------"},          {"HEARTBEAT", 4, "--------"},    {"HEARTBEAT_ACK", 5, "--------"},
    {"ABORT", 6, "-------T"},         {"SHUTDOWN", 7, "--------"},     {"SHUTDOWN_ACK", 8, "--------"},
    {"ERROR", 9, "--------"},         {"COOKIE_ECHO", 10, "--------"}, {"COOKIE_ACK", 11, "--------"},
    {"ECN_ECNE", 12, "--------"},     {"ECN_CWR", 13, "--------"},     {"SHUTDOWN_COMPLETE", 14, "-------T"},
    {"I_DATA", 64, "----IUBE"},       {"ASCONF_ACK", 128, "--------"}, {"RE_CONFIG", 130, "--------"},
    {"FORWARD_TSN", 192, "--------"}, {"ASCONF", 193, "--------"},
};

const ChunkName* chunk_by_type(uint8_t t) {
  for (const ChunkName& c : kChunkNames) {
    if (c.type == t) return &c;
  }
  return nullptr;
}

}  // namespace

void SctpMatch::parse(const ModuleOption& o) {
  if (o.id == kSport || o.id == kDport) {
    const PortRange r = o.line.parse_l4_port_range(o.a, o.acol, ServiceScope::None);
    (o.id == kSport ? sport : dport) = r;
    (o.id == kSport ? sport_given : dport_given) = true;
    (o.id == kSport ? sport_invert : dport_invert) = o.invert;
    return;
  }
  const std::string& mode = o.args[0];
  if (mode == "all") chunks = Chunks::All;
  else if (mode == "any") chunks = Chunks::Any;
  else if (mode == "only") chunks = Chunks::Only;
  else o.fail(o.acol, fmt::format("sctp: bad --chunk-types mode \"{}\" (expected all, any or only)", mode));
  chunks_invert = o.invert;
  chunkmap = {};
  flag_count = 0;
  const std::string_view list = o.args[1];
  const uint32_t col = o.cols[1];
  for (std::string_view item : split(list, ',')) {
    const size_t colon = item.find(':');
    const std::string_view name = item.substr(0, colon);
    if (iequals(name, "ALL")) {
      chunkmap.fill(0xffffffffU);
      continue;
    }
    if (iequals(name, "NONE")) {
      chunkmap = {};
      continue;
    }
    const ChunkName* c = nullptr;
    for (const ChunkName& n : kChunkNames) {
      if (iequals(name, n.name)) c = &n;
    }
    if (c == nullptr) o.fail(col, fmt::format("sctp: unknown chunk type \"{}\"", name));
    chunkmap[c->type >> 5] |= 1U << (c->type & 31);
    if (colon == std::string_view::npos) continue;
    uint8_t flag = 0, mask = 0;
    for (const char ch : item.substr(colon + 1)) {
      bool found = false;
      for (int bit = 0; bit < 8; ++bit) {
        const char v = c->valid_flags[7 - bit];
        if (v == '-' || (ch != v && ch != v + ('a' - 'A'))) continue;
        found = true;
        mask = static_cast<uint8_t>(mask | (1U << bit));
        if (ch == v) flag = static_cast<uint8_t>(flag | (1U << bit));
      }
      if (!found) o.fail(col, fmt::format("sctp: invalid flag \"{}\" for chunk type {}", ch, c->name));
    }
    // iptables 1.8.9 keeps no flags for I_DATA (it accepts and drops them);
    // a type named again adds its flags to its entry (a lower-case letter
    // does not clear an upper-case one) [kernel].
    if (c->type == 64) continue;
    ChunkFlags* entry = nullptr;
    for (uint8_t i = 0; i < flag_count; ++i) {
      if (flags[i].type == c->type) entry = &flags[i];
    }
    if (entry == nullptr) {
      if (flag_count == kMaxFlagTypes)
        o.fail(col, "sctp: flags given for more than 4 chunk types (the kernel's limit)");
      entry = &flags[flag_count++];
      entry->type = c->type;
    }
    entry->flag = static_cast<uint8_t>(entry->flag | flag);
    entry->mask = static_cast<uint8_t>(entry->mask | mask);
  }
}

namespace {

std::string flag_letters(const SctpMatch::ChunkFlags& f, const ChunkName& c) {
  std::string s;
  for (int j = 0; j < 8; ++j) {
    const int bit = 7 - j;
    if (((f.mask >> bit) & 1U) == 0 || c.valid_flags[j] == '-') continue;
    s.push_back(((f.flag >> bit) & 1U) != 0 ? c.valid_flags[j] : static_cast<char>(c.valid_flags[j] + ('a' - 'A')));
  }
  return s;
}

}  // namespace

// The chunk list as iptables prints it: ALL, NONE, or the listed types by
// number, each with :FLAGS when given; `hex` for -L (0x%04X).
static std::string chunk_list(const SctpMatch& m, bool hex) {
  bool all = true, none = true;
  for (uint32_t w : m.chunkmap) {
    all = all && w == 0xffffffffU;
    none = none && w == 0;
  }
  if (all) return "ALL";
  if (none) return "NONE";
  std::string out;
  for (unsigned t = 0; t < 256; ++t) {
    if (!m.has_type(static_cast<uint8_t>(t))) continue;
    const ChunkName* c = chunk_by_type(static_cast<uint8_t>(t));
    if (!out.empty()) out += ',';
    out += hex || c == nullptr ? fmt::format("0x{:04X}", t) : std::string(c->name);
    for (uint8_t i = 0; i < m.flag_count; ++i) {
      if (m.flags[i].type == t && c != nullptr) {
        out += ':';
        out += flag_letters(m.flags[i], *c);
      }
    }
  }
  return out;
}

static const char* mode_name(SctpMatch::Chunks c) {
  switch (c) {
    case SctpMatch::Chunks::Any: return "any";
    case SctpMatch::Chunks::All: return "all";
    case SctpMatch::Chunks::Only: return "only";
    case SctpMatch::Chunks::None: break;
  }
  return "";
}

void SctpMatch::save(SaveLine& l) const {
  l.add("-m sctp");
  if (sport_given) l.inv(sport_invert).add("--sport").add(format_range(sport.lo, sport.hi, ':'));
  if (dport_given) l.inv(dport_invert).add("--dport").add(format_range(dport.lo, dport.hi, ':'));
  if (chunks != Chunks::None) l.inv(chunks_invert).add("--chunk-types").add(mode_name(chunks)).add(chunk_list(*this, false));
}

void SctpMatch::list(ListText& t) const {
  t.add(" sctp");
  if (sport_given) TcpMatch::list_ports(t, "spt", sport, sport_invert);
  if (dport_given) TcpMatch::list_ports(t, "dpt", dport, dport_invert);
  if (chunks != Chunks::None) t.put("{} {} {}", chunks_invert ? " !" : "", mode_name(chunks), chunk_list(*this, true));
}

}  // namespace nfb
