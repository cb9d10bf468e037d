// nfbench snapshot: runs the host's own tools and keeps their output.
#include "tools/snapshot.h"

#include <fcntl.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include <fmt/format.h>

extern char** environ;

namespace nfb {

namespace fs = std::filesystem;

namespace {

struct Ran {
  bool started = false;  // the program exists and ran
  int status = -1;       // exit status
  std::string err;       // its stderr
};

/// Runs `argv` (PATH searched, sbin directories too) with stdout to `out`.
Ran run_to_file(const std::vector<std::string>& argv, const fs::path& out) {
  Ran r;
  const fs::path err_path = out.string() + ".stderr";
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 1, out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_addopen(&fa, 2, err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  std::vector<char*> args;
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  std::string program = argv[0];
  for (const char* dir : {"/usr/sbin/", "/sbin/", "/usr/bin/", "/bin/", "/usr/local/sbin/"}) {
    if (::access((std::string(dir) + argv[0]).c_str(), X_OK) == 0) {
      program = std::string(dir) + argv[0];
      break;
    }
  }
  pid_t pid = 0;
  const int rc = posix_spawnp(&pid, program.c_str(), &fa, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  if (rc == 0) {
    int st = 0;
    while (::waitpid(pid, &st, 0) < 0 && errno == EINTR) {
    }
    r.started = !(WIFEXITED(st) && WEXITSTATUS(st) == 127);
    r.status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
  }
  std::ifstream e(err_path);
  std::stringstream ss;
  ss << e.rdbuf();
  r.err = ss.str();
  std::error_code ec;
  fs::remove(err_path, ec);
  if (rc != 0) r.err = std::strerror(rc);
  return r;
}

std::string first_line(const std::string& s) {
  const size_t nl = s.find('\n');
  return nl == std::string::npos ? s : s.substr(0, nl);
}

bool has_rules(const fs::path& save) {
  std::ifstream in(save);
  std::string line;
  while (std::getline(in, line)) {
    if (line.starts_with("-A ") || line.starts_with("[")) return true;
  }
  return false;
}

}  // namespace

std::string take_snapshot(const std::string& dir) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) throw std::runtime_error(fmt::format("snapshot: cannot create {}: {}", dir, ec.message()));
  std::string report;
  const auto now = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  char when[64];
  std::strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&now));
  char host[256] = {};
  ::gethostname(host, sizeof host - 1);
  report += fmt::format("taken {} on {}\n", when, host);
  const fs::path d(dir);

  // iptables-save: the legacy tables, or the nft-backed ones when those
  // are empty.
  Ran r = run_to_file({"iptables-legacy-save", "-c"}, d / "iptables.save");
  std::string used = "iptables-legacy-save -c";
  std::string note;
  if (!r.started || r.status != 0 || !has_rules(d / "iptables.save")) {
    const Ran legacy = r;
    const Ran n = run_to_file({"iptables-save", "-c"}, d / "iptables.save");
    const bool legacy_ok = legacy.started && legacy.status == 0;
    if (n.started && n.status == 0 && (has_rules(d / "iptables.save") || !legacy_ok)) {
      r = n;
      used = "iptables-save -c";
      if (legacy_ok) note = " (iptables-legacy-save had no rules)";
    } else if (legacy_ok) {
      run_to_file({"iptables-legacy-save", "-c"}, d / "iptables.save");  // empty, but legacy's
      note = " (no rules in either)";
    } else {
      throw std::runtime_error(fmt::format("snapshot: iptables-legacy-save: {}; iptables-save: {}",
                                           legacy.started ? first_line(legacy.err) : "not installed",
                                           n.started ? first_line(n.err) : "not installed"));
    }
  }
  report += fmt::format("iptables.save: {}{}\n", used, note);

  struct Item {
    const char* file;
    std::vector<std::string> argv;
  };
  const Item items[] = {
      {"ip-addr.json", {"ip", "-d", "-j", "addr"}},  // -d: link kinds (bridges, their snooping)
      {"ip-route.json", {"ip", "-j", "route"}},
      {"ip-link.json", {"ip", "-d", "-j", "link"}},
      {"ipset.save", {"ipset", "save"}},
  };
  for (const Item& it : items) {
    const Ran x = run_to_file(it.argv, d / it.file);
    std::string cmd;
    for (const std::string& a : it.argv) cmd += (cmd.empty() ? "" : " ") + a;
    if (!x.started || x.status != 0) {
      fs::remove(d / it.file, ec);
      report += fmt::format("{}: not taken: {} {}\n", it.file, cmd,
                            x.started ? fmt::format("failed: {}", first_line(x.err)) : "is not installed");
    } else {
      report += fmt::format("{}: {}\n", it.file, cmd);
    }
  }

  // sysctl -a, the parts the model reads.
  const fs::path all = d / "sysctl.all";
  const Ran s = run_to_file({"sysctl", "-a"}, all);
  if (s.started) {
    std::ifstream in(all);
    std::ofstream out(d / "sysctl.txt");
    std::string line;
    size_t kept = 0;
    while (std::getline(in, line)) {
      if (line.starts_with("net.netfilter.") || line.starts_with("net.ipv4.") || line.starts_with("net.bridge.")) {
        out << line << '\n';
        ++kept;
      }
    }
    if (!out) throw std::runtime_error(fmt::format("snapshot: cannot write {}", (d / "sysctl.txt").string()));
    report += fmt::format("sysctl.txt: sysctl -a ({} net.netfilter/net.ipv4/net.bridge settings){}\n", kept,
                          s.status == 0 ? "" : fmt::format("; it exited {}: {}", s.status, first_line(s.err)));
  } else {
    report += "sysctl.txt: not taken: sysctl is not installed\n";
  }
  fs::remove(all, ec);

  std::ofstream rep(d / "snapshot.txt");
  rep << report;
  if (!rep) throw std::runtime_error(fmt::format("snapshot: cannot write {}", (d / "snapshot.txt").string()));
  return report;
}

}  // namespace nfb
