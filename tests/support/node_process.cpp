#include "tests/support/node_process.hpp"

#include <arpa/inet.h>
#include <csignal>
#include <fcntl.h>
#include <fstream>
#include <netinet/in.h>
#include <poll.h>
#include <random>
#include <set>
#include <sys/file.h>
#include <sys/stat.h>
#include <sstream>
#include <stdexcept>
#include <sys/socket.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

#ifndef WHARF_NODE_BIN
#  error "WHARF_NODE_BIN must name the wharf-node binary"
#endif

namespace wharf::test {

namespace {

bool can_bind(uint16_t port) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(port);
  bool ok = ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
  ::close(fd);
  return ok;
}

// The first port of the kernel's ephemeral range (32768 unless configured otherwise).
uint16_t ephemeral_start() {
  std::ifstream in{"/proc/sys/net/ipv4/ip_local_port_range"};
  unsigned lo = 32768, hi = 60999;
  if (!(in >> lo >> hi) || lo < 12000)
    lo = 32768;
  return static_cast<uint16_t>(lo);
}

} // namespace

uint16_t free_port() {
  // Ports below the kernel's ephemeral range: the kernel never hands one of them to a
  // connect() or bind(0), so between this check and the node's bind nobody takes it by
  // chance. Test processes running side by side exclude each other with a lock file per
  // port, held until this process ends (never released, so never given twice).
  static std::vector<int> held;
  static std::mt19937 rng{static_cast<unsigned>(::getpid()) * 2654435761u
                          ^ static_cast<unsigned>(std::chrono::steady_clock::now()
                                                    .time_since_epoch().count())};
  const uint16_t hi = ephemeral_start();
  const uint16_t lo = static_cast<uint16_t>(hi - 10000);
  ::mkdir("/tmp/wharf-test-ports", 01777);
  for (int attempt = 0; attempt < 1000; ++attempt) {
    auto port = static_cast<uint16_t>(lo + rng() % (hi - lo));
    auto path = "/tmp/wharf-test-ports/" + std::to_string(port);
    int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0666);
    if (fd < 0)
      continue;
    if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
      ::close(fd);
      continue; // another test process has it
    }
    if (!can_bind(port)) {
      ::close(fd);
      continue;
    }
    held.push_back(fd);
    return port;
  }
  throw std::runtime_error("free_port: no free port after 1000 attempts");
}

bool eventually(const std::function<bool()>& cond, std::chrono::milliseconds limit) {
  auto deadline = std::chrono::steady_clock::now() + limit;
  while (true) {
    if (cond())
      return true;
    if (std::chrono::steady_clock::now() >= deadline)
      return false;
    std::this_thread::sleep_for(std::chrono::milliseconds{20});
  }
}

int run_command(const std::vector<std::string>& argv, std::string* output) {
  int fds[2];
  if (::pipe(fds) != 0)
    throw std::runtime_error("pipe failed");
  // Everything the child needs is built before fork: other threads of this process may hold
  // the allocator's lock at fork time, so the child must not allocate before exec.
  std::vector<char*> args;
  for (auto& a : argv)
    args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  auto pid = ::fork();
  if (pid == 0) {
    ::dup2(fds[1], 1);
    ::dup2(fds[1], 2);
    ::close(fds[0]);
    ::close(fds[1]);
    ::execv(args[0], args.data());
    ::_exit(127);
  }
  ::close(fds[1]);
  std::string out;
  char buf[4096];
  ssize_t n;
  while ((n = ::read(fds[0], buf, sizeof(buf))) > 0)
    out.append(buf, static_cast<size_t>(n));
  ::close(fds[0]);
  int status = 0;
  ::waitpid(pid, &status, 0);
  if (output)
    *output = out;
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

namespace {

int connect_to(uint16_t port) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(port);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

// Reads until the peer closes, `limit` passes, or a complete HTTP response (headers plus
// Content-Length bytes) has arrived.
std::string read_all(int fd, std::chrono::milliseconds limit) {
  std::string out;
  auto complete = [&out] {
    auto sep = out.find("\r\n\r\n");
    if (out.compare(0, 5, "HTTP/") != 0 || sep == std::string::npos)
      return false;
    auto cl = out.find("Content-Length: ");
    if (cl == std::string::npos || cl > sep)
      return false;
    auto len = std::stoul(out.substr(cl + 16));
    return out.size() >= sep + 4 + len;
  };
  auto deadline = std::chrono::steady_clock::now() + limit;
  char buf[4096];
  while (std::chrono::steady_clock::now() < deadline) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 100) <= 0)
      continue;
    auto n = ::read(fd, buf, sizeof(buf));
    if (n <= 0)
      break;
    out.append(buf, static_cast<size_t>(n));
    if (complete())
      break;
  }
  return out;
}

} // namespace

tcp_client::tcp_client(uint16_t port) : fd_(connect_to(port)) {}

tcp_client::~tcp_client() {
  if (fd_ >= 0)
    ::close(fd_);
}

bool tcp_client::send(const std::string& bytes) {
  if (fd_ < 0)
    return false;
  for (size_t sent = 0; sent < bytes.size();) {
    auto n = ::send(fd_, bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL);
    if (n <= 0)
      return false;
    sent += static_cast<size_t>(n);
  }
  return true;
}

void tcp_client::shutdown_write() {
  if (fd_ >= 0)
    ::shutdown(fd_, SHUT_WR);
}

std::string tcp_client::read_until(const std::string& text, std::chrono::milliseconds limit) {
  auto deadline = std::chrono::steady_clock::now() + limit;
  char buf[4096];
  while (fd_ >= 0 && !closed_ && buffer_.find(text) == std::string::npos
         && std::chrono::steady_clock::now() < deadline) {
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, 50) <= 0)
      continue;
    auto n = ::read(fd_, buf, sizeof(buf));
    if (n <= 0)
      closed_ = true;
    else
      buffer_.append(buf, static_cast<size_t>(n));
  }
  return buffer_;
}

int http_get(uint16_t port, const std::string& path, std::string* body) {
  return http_request(port, "GET", path, "", body, std::chrono::seconds{5});
}

int http_request(uint16_t port, const std::string& method, const std::string& path,
                 const std::string& body, std::string* response_body,
                 std::chrono::milliseconds limit) {
  int fd = connect_to(port);
  if (fd < 0)
    return 0;
  auto req = method + " " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n";
  if (!body.empty())
    req += "Content-Type: application/json\r\nContent-Length: " + std::to_string(body.size())
           + "\r\n";
  req += "\r\n" + body;
  for (size_t sent = 0; sent < req.size();) {
    auto n = ::send(fd, req.data() + sent, req.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) {
      ::close(fd);
      return 0;
    }
    sent += static_cast<size_t>(n);
  }
  auto resp = read_all(fd, limit);
  ::close(fd);
  auto sep = resp.find("\r\n\r\n");
  if (resp.compare(0, 9, "HTTP/1.1 ") != 0 || sep == std::string::npos)
    return 0;
  auto cl = resp.find("Content-Length: ");
  if (cl != std::string::npos && cl < sep && resp.size() < sep + 4 + std::stoul(resp.substr(cl + 16)))
    return 0; // cut short by `limit`
  if (response_body)
    *response_body = resp.substr(sep + 4);
  return std::stoi(resp.substr(9, 3));
}

bool send_raw(uint16_t port, const std::string& bytes) {
  int fd = connect_to(port);
  if (fd < 0)
    return false;
  auto n = ::write(fd, bytes.data(), bytes.size());
  (void) n; // the peer may close early on garbage; that is the point
  ::shutdown(fd, SHUT_WR);
  read_all(fd, std::chrono::seconds{2});
  ::close(fd);
  return true;
}

node_process::node_process(std::string name, std::string data_dir, std::string log_dir,
                           uint16_t seed_port)
  : name_(std::move(name)), data_dir_(std::move(data_dir)),
    log_path_(log_dir + "/" + name_ + ".log"), binary_(WHARF_NODE_BIN), seed_port_(seed_port) {
  ports_.cluster = free_port();
  ports_.rpc = free_port();
  ports_.http = free_port();
}

node_process::~node_process() {
  if (pid_ > 0) {
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
  }
}

void node_process::start(const std::vector<std::string>& extra_flags) {
  if (pid_ > 0)
    throw std::logic_error(name_ + " is already running");
  std::vector<std::string> argv = {
    binary_, "--name", name_, "--cluster-port", std::to_string(ports_.cluster),
    "--rpc-port", std::to_string(ports_.rpc), "--http-port", std::to_string(ports_.http),
    "--data-dir", data_dir_, "--seed",
    "127.0.0.1:" + std::to_string(seed_port_ ? seed_port_ : ports_.cluster)};
  argv.insert(argv.end(), extra_flags.begin(), extra_flags.end());
  std::vector<char*> args; // built before fork, see run_command
  for (auto& a : argv)
    args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  int fd = ::open(log_path_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0)
    throw std::runtime_error("cannot open " + log_path_);
  auto pid = ::fork();
  if (pid == 0) {
    ::dup2(fd, 1); // dup2 clears O_CLOEXEC on the copies
    ::dup2(fd, 2);
    ::execv(args[0], args.data());
    ::_exit(127);
  }
  ::close(fd);
  pid_ = pid;
}

void node_process::signal(int sig) {
  if (pid_ > 0)
    ::kill(pid_, sig);
}

int node_process::wait(std::chrono::milliseconds limit) {
  if (pid_ <= 0)
    return -1;
  int status = 0;
  bool done = eventually([&] { return ::waitpid(pid_, &status, WNOHANG) == pid_; }, limit);
  if (!done)
    return -1;
  pid_ = -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

std::string node_process::log() const {
  std::ifstream in{log_path_};
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string node_process::log_tail(size_t lines) const {
  auto all = log();
  size_t pos = all.size();
  for (size_t i = 0; i <= lines && pos != std::string::npos && pos > 0; ++i)
    pos = all.rfind('\n', pos - 1);
  // WNOWAIT: look without reaping, so a later wait() still gets the exit status.
  siginfo_t info{};
  bool exited = pid_ > 0
                && ::waitid(P_PID, static_cast<id_t>(pid_), &info, WEXITED | WNOHANG | WNOWAIT) == 0
                && info.si_pid == pid_;
  std::string state = pid_ <= 0 ? "not running"
                      : exited  ? "exited with " + std::to_string(info.si_status)
                                : "running, pid " + std::to_string(pid_);
  return "--- " + name_ + " (" + state + ", ports " + std::to_string(ports_.cluster) + "/"
         + std::to_string(ports_.rpc) + "/" + std::to_string(ports_.http) + ") log ---\n"
         + (pos == std::string::npos || pos == 0 ? all : all.substr(pos + 1));
}

} // namespace wharf::test
