// Network-namespace sandbox and fork/exec command runner for kernel tests.
// See netns.h for the contracts.
#include "tests/support/netns.h"
#include "tests/support/test_programs.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <utility>

extern char** environ;

namespace nfb {
namespace {

// Owns one file descriptor; closes it on destruction.
class UniqueFd {
 public:
  UniqueFd() = default;
  explicit UniqueFd(int fd) noexcept : fd_(fd) {}
  ~UniqueFd() { reset(); }
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;
  UniqueFd(UniqueFd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  UniqueFd& operator=(UniqueFd&& other) noexcept {
    if (this != &other) {
      reset();
      fd_ = std::exchange(other.fd_, -1);
    }
    return *this;
  }
  int get() const noexcept { return fd_; }
  bool valid() const noexcept { return fd_ >= 0; }
  void reset() noexcept {
    if (fd_ >= 0) {
      ::close(fd_);
      fd_ = -1;
    }
  }

 private:
  int fd_ = -1;
};

[[noreturn]] void throw_errno(const std::string& what) {
  throw std::runtime_error(what + ": " + std::strerror(errno));
}

std::pair<UniqueFd, UniqueFd> make_pipe() {
  std::array<int, 2> fds{};
  if (::pipe2(fds.data(), O_CLOEXEC) != 0) throw_errno("pipe2");
  return {UniqueFd(fds[0]), UniqueFd(fds[1])};
}

void set_nonblocking(int fd) {
  const int flags = ::fcntl(fd, F_GETFL);
  if (flags < 0 || ::fcntl(fd, F_SETFL, flags | O_NONBLOCK) != 0) throw_errno("fcntl O_NONBLOCK");
}

bool is_executable_file(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode) && ::access(path.c_str(), X_OK) == 0;
}

// In the child, between fork and exec: only async-signal-safe calls.
// Moves `fd` onto `target` without the close-on-exec flag.
bool move_fd_to(int fd, int target) noexcept {
  if (fd == target) {
    const int flags = ::fcntl(fd, F_GETFD);
    return flags >= 0 && ::fcntl(fd, F_SETFD, flags & ~FD_CLOEXEC) == 0;
  }
  return ::dup2(fd, target) == target;
}

// The environment for children: the caller's, with the locale forced to C so
// that the messages tests compare do not depend on who runs them.
std::vector<std::string> child_environment() {
  std::vector<std::string> env;
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
    const std::string_view entry(*e);
    if (entry.starts_with("LC_") || entry.starts_with("LANG=") || entry.starts_with("LANGUAGE=")) {
      continue;
    }
    env.emplace_back(entry);
  }
  env.emplace_back("LC_ALL=C");
  return env;
}

std::vector<char*> c_pointers(std::vector<std::string>& strings) {
  std::vector<char*> out;
  out.reserve(strings.size() + 1);
  for (std::string& s : strings) out.push_back(s.data());
  out.push_back(nullptr);
  return out;
}

// Pumps stdin_text into `in` and drains `out`/`err` until both reach EOF or the
// deadline passes. Returns false on timeout.
bool pump(UniqueFd& in, UniqueFd& out, UniqueFd& err, std::string_view stdin_text,
          CommandResult& result, std::chrono::steady_clock::time_point deadline) {
  size_t written = 0;
  if (in.valid() && stdin_text.empty()) in.reset();  // EOF at once
  std::array<char, 65536> buf{};
  while (out.valid() || err.valid()) {
    std::array<pollfd, 3> pfds{};
    nfds_t n = 0;
    int in_slot = -1;
    int out_slot = -1;
    int err_slot = -1;
    if (in.valid()) {
      in_slot = static_cast<int>(n);
      pfds[n++] = pollfd{in.get(), POLLOUT, 0};
    }
    if (out.valid()) {
      out_slot = static_cast<int>(n);
      pfds[n++] = pollfd{out.get(), POLLIN, 0};
    }
    if (err.valid()) {
      err_slot = static_cast<int>(n);
      pfds[n++] = pollfd{err.get(), POLLIN, 0};
    }
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return false;
    const int ready = ::poll(pfds.data(), n, static_cast<int>(std::min<long long>(left.count(), 1 << 30)));
    if (ready < 0) {
      if (errno == EINTR) continue;
      throw_errno("poll");
    }
    if (ready == 0) return false;

    if (in_slot >= 0 && pfds[static_cast<size_t>(in_slot)].revents != 0) {
      // MSG_NOSIGNAL: a child that exits without reading all of its input
      // must not kill the test process with SIGPIPE.
      const ssize_t w = ::send(in.get(), stdin_text.data() + written, stdin_text.size() - written,
                               MSG_NOSIGNAL);
      if (w > 0) {
        written += static_cast<size_t>(w);
        if (written == stdin_text.size()) in.reset();
      } else if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
        in.reset();  // EPIPE and the like: the child stopped reading
      }
    }
    const auto drain = [&buf](UniqueFd& fd, short revents, std::string& sink) {
      if (revents == 0) return;
      const ssize_t r = ::read(fd.get(), buf.data(), buf.size());
      if (r > 0) {
        sink.append(buf.data(), static_cast<size_t>(r));
      } else if (r == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
        fd.reset();
      }
    };
    if (out_slot >= 0) drain(out, pfds[static_cast<size_t>(out_slot)].revents, result.out);
    if (err_slot >= 0) drain(err, pfds[static_cast<size_t>(err_slot)].revents, result.err);
  }
  return true;
}

std::string trim_trailing_newlines(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r')) s.pop_back();
  return s;
}

}  // namespace

std::string CommandResult::describe() const {
  std::string what;
  if (timed_out) {
    what = "timed out";
  } else if (term_signal != 0) {
    what = "killed by signal " + std::to_string(term_signal);
  } else {
    what = "exit " + std::to_string(exit_code);
  }
  const std::string e = trim_trailing_newlines(err);
  if (!e.empty()) what += ": " + e;
  return what;
}

std::optional<std::string> find_executable(std::string_view name) {
  if (name.empty()) return std::nullopt;
  if (name.find('/') != std::string_view::npos) {
    std::string path(name);
    if (is_executable_file(path)) return path;
    return std::nullopt;
  }
  // PATH first, then the sbin directories that a non-login root shell or a
  // test runner's environment often lacks.
  const char* env_path = std::getenv("PATH");
  std::string dirs = env_path != nullptr ? env_path : "/usr/bin:/bin";
  dirs += ":/usr/local/sbin:/usr/sbin:/sbin";
  size_t start = 0;
  while (start <= dirs.size()) {
    size_t end = dirs.find(':', start);
    if (end == std::string::npos) end = dirs.size();
    const std::string dir = dirs.substr(start, end - start);
    if (!dir.empty()) {  // an empty entry would mean ".", which tests never want
      std::string candidate = dir + "/" + std::string(name);
      if (is_executable_file(candidate)) return candidate;
    }
    start = end + 1;
  }
  return std::nullopt;
}

CommandResult run_command(const std::vector<std::string>& argv, std::string_view stdin_text,
                          std::chrono::milliseconds timeout) {
  if (argv.empty()) throw std::runtime_error("run_command: empty argv");
  CommandResult result;
  const std::optional<std::string> path = find_executable(argv.front());
  if (!path) {
    result.exit_code = 127;
    result.err = argv.front() + ": command not found\n";
    return result;
  }
  // A program found by name must be one a fresh machine gets from
  // tools/run.sh (a path with '/' is a program the build made).
  if (argv.front().find('/') == std::string::npos && test::find_test_program(argv.front()) == nullptr) {
    throw std::runtime_error("run_command: \"" + argv.front() +
                             "\" is not in tests/support/test_programs.h: add it there with the Debian package "
                             "that installs it, and add the package to tools/run.sh");
  }

  // Everything the child needs is built before fork: after it, the child may
  // not allocate (another thread may hold the allocator's lock).
  std::vector<std::string> args = argv;
  std::vector<char*> c_args = c_pointers(args);
  std::vector<std::string> env = child_environment();
  std::vector<char*> c_env = c_pointers(env);

  std::array<int, 2> sv{};
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv.data()) != 0) throw_errno("socketpair");
  UniqueFd in_parent(sv[0]);
  UniqueFd in_child(sv[1]);
  auto [out_parent, out_child] = make_pipe();
  auto [err_parent, err_child] = make_pipe();
  auto [exec_status_read, exec_status_write] = make_pipe();

  const pid_t pid = ::fork();
  if (pid < 0) throw_errno("fork");
  if (pid == 0) {
    ::signal(SIGPIPE, SIG_DFL);
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    int child_errno = 0;
    if (!move_fd_to(in_child.get(), STDIN_FILENO) || !move_fd_to(out_child.get(), STDOUT_FILENO) ||
        !move_fd_to(err_child.get(), STDERR_FILENO)) {
      child_errno = errno;
    } else {
      ::execve(path->c_str(), c_args.data(), c_env.data());
      child_errno = errno;
    }
    // Tell the parent why exec failed; the pipe closes on a successful exec.
    [[maybe_unused]] const ssize_t ignored =
        ::write(exec_status_write.get(), &child_errno, sizeof child_errno);
    ::_exit(127);
  }

  in_child.reset();
  out_child.reset();
  err_child.reset();
  exec_status_write.reset();

  int exec_errno = 0;
  for (;;) {
    const ssize_t r = ::read(exec_status_read.get(), &exec_errno, sizeof exec_errno);
    if (r < 0 && errno == EINTR) continue;
    if (r != static_cast<ssize_t>(sizeof exec_errno)) exec_errno = 0;  // exec succeeded
    break;
  }
  exec_status_read.reset();
  if (exec_errno != 0) in_parent.reset();  // nobody will read it

  set_nonblocking(out_parent.get());
  set_nonblocking(err_parent.get());
  if (in_parent.valid()) set_nonblocking(in_parent.get());

  const auto deadline = std::chrono::steady_clock::now() + timeout;
  bool finished = false;
  try {
    finished = pump(in_parent, out_parent, err_parent, stdin_text, result, deadline);
  } catch (...) {
    ::kill(pid, SIGKILL);
    int ignored = 0;
    while (::waitpid(pid, &ignored, 0) < 0 && errno == EINTR) {
    }
    throw;
  }
  if (!finished) {
    result.timed_out = true;
    ::kill(pid, SIGKILL);
  }
  in_parent.reset();
  out_parent.reset();
  err_parent.reset();

  int status = 0;
  while (::waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) throw_errno("waitpid");
  }
  if (WIFEXITED(status)) {
    result.exit_code = WEXITSTATUS(status);
  } else if (WIFSIGNALED(status)) {
    result.term_signal = WTERMSIG(status);
  }
  if (exec_errno != 0) {
    result.err += "exec " + *path + ": " + std::strerror(exec_errno) + "\n";
  }
  return result;
}

NetnsSandbox::NetnsSandbox() {
  static std::atomic<unsigned> counter{0};
  name_ = "nfbtest-" + std::to_string(::getpid()) + "-" + std::to_string(counter.fetch_add(1));
  const CommandResult r = run_command({"ip", "netns", "add", name_});
  if (!r.ok()) throw std::runtime_error("ip netns add " + name_ + ": " + r.describe());
}

NetnsSandbox::~NetnsSandbox() {
  try {
    run_command({"ip", "netns", "del", name_});
  } catch (...) {
    // A destructor must not throw; a leaked namespace is visible in
    // `ip netns list` and harmless to later runs (names carry the pid).
  }
}

CommandResult NetnsSandbox::run(const std::vector<std::string>& argv, std::string_view stdin_text,
                                std::chrono::milliseconds timeout) const {
  if (argv.empty()) throw std::runtime_error("NetnsSandbox::run: empty argv");
  if (argv.front().find('/') == std::string::npos && find_executable(argv.front()) &&
      test::find_test_program(argv.front()) == nullptr) {
    throw std::runtime_error("NetnsSandbox::run: \"" + argv.front() +
                             "\" is not in tests/support/test_programs.h: add it there with the Debian package "
                             "that installs it, and add the package to tools/run.sh");
  }
  std::vector<std::string> full{"ip", "netns", "exec", name_};
  full.reserve(argv.size() + 4);
  // Resolve here, with our PATH fallbacks, rather than leave it to ip's PATH.
  full.push_back(find_executable(argv.front()).value_or(argv.front()));
  full.insert(full.end(), argv.begin() + 1, argv.end());
  return run_command(full, stdin_text, timeout);
}

std::string ipset_lines(std::string_view ruleset, bool marked) {
  constexpr std::string_view kMarker = "#ipset ";
  std::string out;
  for (size_t pos = 0; pos < ruleset.size();) {
    size_t end = ruleset.find('\n', pos);
    if (end == std::string_view::npos) end = ruleset.size();
    const std::string_view line = ruleset.substr(pos, end - pos);
    if (line.starts_with(kMarker)) {
      out += marked ? line : line.substr(kMarker.size());
      out += '\n';
    }
    pos = end + 1;
  }
  return out;
}

void NetnsSandbox::restore(std::string_view ruleset, bool counters) const {
  // The sets a ruleset's -m set rules need, created first.
  const std::string sets = ipset_lines(ruleset, false);
  if (!sets.empty()) {
    const CommandResult r = run({"ipset", "restore", "-exist"}, sets);
    if (!r.ok()) throw std::runtime_error("ipset restore in " + name_ + ": " + r.describe());
  }
  std::vector<std::string> argv{"iptables-legacy-restore", "--wait=30"};
  if (counters) argv.emplace_back("--counters");
  const CommandResult r = run(argv, ruleset);
  if (!r.ok()) throw std::runtime_error("iptables-legacy-restore in " + name_ + ": " + r.describe());
}

std::string NetnsSandbox::save(bool counters) const {
  std::vector<std::string> argv{"iptables-legacy-save"};
  if (counters) argv.emplace_back("--counters");
  CommandResult r = run(argv);
  if (!r.ok()) throw std::runtime_error("iptables-legacy-save in " + name_ + ": " + r.describe());
  return std::move(r.out);
}

std::optional<std::string> NetnsSandbox::unavailable_reason() {
  static const std::optional<std::string> reason = []() -> std::optional<std::string> {
    if (::geteuid() != 0) {
      return "kernel tests need root (running as uid " + std::to_string(::geteuid()) + ")";
    }
    for (const char* tool : {"ip", "iptables-legacy-restore", "iptables-legacy-save"}) {
      if (!find_executable(tool)) return std::string(tool) + " not found in PATH or sbin";
    }
    try {
      const NetnsSandbox probe;
      const CommandResult r = probe.run({"iptables-legacy-restore", "--wait=30"}, "*filter\nCOMMIT\n");
      if (!r.ok()) return "iptables-legacy-restore fails inside a network namespace: " + r.describe();
      const CommandResult s = probe.run({"iptables-legacy-save"});
      if (!s.ok() || s.out.find("*filter") == std::string::npos) {
        return "iptables-legacy-save does not list the filter table inside a network namespace: " +
               s.describe();
      }
    } catch (const std::exception& e) {
      return std::string("cannot create a network namespace: ") + e.what();
    }
    return std::nullopt;
  }();
  return reason;
}

std::map<std::string, std::string> split_tables(std::string_view save_text) {
  std::map<std::string, std::string> tables;
  std::string* block = nullptr;  // the table being collected, if any
  size_t pos = 0;
  while (pos < save_text.size()) {
    size_t end = save_text.find('\n', pos);
    if (end == std::string_view::npos) end = save_text.size();
    const std::string_view line = save_text.substr(pos, end - pos);
    pos = end + 1;
    if (line.starts_with('#')) continue;
    if (block == nullptr) {
      if (line.starts_with('*')) {
        block = &tables[std::string(line.substr(1))];
      } else if (line.empty()) {
        continue;
      } else {
        block = &tables[""];
        block->append(line);
        block->push_back('\n');
        block = nullptr;
        continue;
      }
    }
    block->append(line);
    block->push_back('\n');
    if (line == "COMMIT") block = nullptr;
  }
  return tables;
}

std::string strip_comment_lines(std::string_view save_text) {
  std::string out;
  out.reserve(save_text.size());
  size_t pos = 0;
  while (pos < save_text.size()) {
    size_t end = save_text.find('\n', pos);
    if (end == std::string_view::npos) end = save_text.size();
    const std::string_view line = save_text.substr(pos, end - pos);
    pos = end + 1;
    if (line.starts_with('#')) continue;
    out.append(line);
    out.push_back('\n');
  }
  return out;
}

}  // namespace nfb
