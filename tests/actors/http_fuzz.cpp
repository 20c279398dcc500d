// libFuzzer target: the superlink's HTTP side. An input is a raw HTTP
// request (request line, headers, body). Each one is
//  - cut into path and query as a server decodes them and routed directly
//    (route_http, parse_decimal): never an exception, a route that agrees
//    with a reference reading of the same text, and a JSON answer whose
//    dump never throws, whatever bytes the path holds;
//  - every socket_every-th input (each one when replaying files), also
//    written as it is to a real http_service (cpp-httplib, started once on
//    127.0.0.1, port 0) whose handler does what the superlink's on_http
//    does at the boundary; the answer is read until the server closes, and
//    a well-formed GET must still be answered afterwards.
//
// Built and run by CTest (fuzz_http, 60 s, see tests/actors/CMakeLists.txt).
// Longer, by hand:
//   cmake -DSTAMEN_FUZZ_SECONDS=3600 . && ctest -R fuzz_http
// or directly, with a corpus that grows in the build tree:
//   mkdir -p corpus && cp tests/actors/fuzz_inputs/http/seeds/* corpus/
//   build/bin/http_fuzz -max_total_time=3600 -rss_limit_mb=2048 -max_len=4096 corpus
// A crash leaves crash-<sha1> behind: copy it to
// tests/actors/fuzz_inputs/http/crashes/ so that fuzz_replay keeps it.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include <cctype>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "actors/http_route.hpp"
#include "actors/http_service.hpp"

namespace {

using namespace stamen;
using query_map = std::multimap<std::string, std::string>;

// Two connections per input cost a millisecond, and up to 20 ms for a
// request the server waits the rest of: while fuzzing, the socket part runs
// on every N-th input only (~700 inputs/s), the direct part on all of them.
// Inputs given as files (a replay) all go through the socket.
unsigned socket_every = 8;

[[noreturn]] void die(const std::string& why) {
  std::fprintf(stderr, "http_fuzz: %s\n", why.c_str());
  std::abort();
}

void check(bool ok, const char* what) {
  if (!ok) die(what);
}

// --- the reference reading -------------------------------------------------

int hex(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// %XX decoding, '+' as a space in a query (as cpp-httplib's decode_url).
std::string percent_decode(const std::string& s, bool plus_is_space) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size() && hex(s[i + 1]) >= 0 && hex(s[i + 2]) >= 0) {
      out += static_cast<char>(hex(s[i + 1]) * 16 + hex(s[i + 2]));
      i += 2;
    } else if (s[i] == '+' && plus_is_space) {
      out += ' ';
    } else {
      out += s[i];
    }
  }
  return out;
}

query_map parse_query(const std::string& text) {
  query_map q;
  size_t start = 0;
  while (start <= text.size()) {
    size_t end = text.find('&', start);
    if (end == std::string::npos) end = text.size();
    auto pair = text.substr(start, end - start);
    if (!pair.empty()) {
      auto eq = pair.find('=');
      auto key = pair.substr(0, eq);
      auto value = eq == std::string::npos ? std::string{} : pair.substr(eq + 1);
      q.emplace(percent_decode(key, true), percent_decode(value, true));
    }
    start = end + 1;
  }
  return q;
}

// What parse_decimal must accept: digits only, at least one, below 2^64.
std::optional<uint64_t> reference_decimal(const std::string& s) {
  if (s.empty()) return std::nullopt;
  uint64_t x = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return std::nullopt;
    uint64_t d = static_cast<uint64_t>(c - '0');
    if (x > (UINT64_MAX - d) / 10) return std::nullopt;
    x = x * 10 + d;
  }
  return x;
}

// The route route_http must give for (path, query), or none for a 400.
std::optional<http_route> reference_route(const std::string& path, const query_map& query) {
  using kind = http_route::kind;
  http_route r;
  const std::string prefix = "/api/runs/";
  if (path == "/metrics") r.what = kind::metrics;
  else if (path == "/") r.what = kind::dashboard;
  else if (path == "/api/warnings") r.what = kind::warnings;
  else if (path == "/api/runs") r.what = kind::runs;
  else if (path == "/api/nodes") r.what = kind::nodes;
  else if (path.compare(0, prefix.size(), prefix) == 0) {
    auto id = reference_decimal(path.substr(prefix.size()));
    if (!id) return std::nullopt;
    r.what = kind::run;
    r.run_id = *id;
  } else {
    r.what = kind::not_found;
  }
  if (r.what != kind::nodes) return r;
  for (auto [key, target] : {std::pair{"offset", &r.offset}, std::pair{"limit", &r.limit}}) {
    auto n = query.count(key);
    if (n == 0) continue;
    if (n > 1) return std::nullopt;
    auto x = reference_decimal(query.find(key)->second);
    if (!x) return std::nullopt;
    *target = static_cast<size_t>(*x);
  }
  r.limit = std::min(r.limit, max_nodes_page);
  r.offset = std::min<size_t>(r.offset, size_t{1} << 62);
  return r;
}

const char* kind_name(http_route::kind k) {
  switch (k) {
    case http_route::kind::metrics: return "metrics";
    case http_route::kind::dashboard: return "dashboard";
    case http_route::kind::warnings: return "warnings";
    case http_route::kind::runs: return "runs";
    case http_route::kind::run: return "run";
    case http_route::kind::nodes: return "nodes";
    case http_route::kind::not_found: return "not_found";
  }
  return "?";
}

// --- the boundary, as the superlink's on_http -----------------------------

// route_http, then an answer built from what it decoded; peer-supplied
// strings are dumped with invalid UTF-8 replaced (actors/superlink_http.cpp).
http_answer answer(const std::string& path, const query_map& query) {
  auto route = route_http(path, query);
  if (!route) return {400, "text/plain", route.error().what + "\n"};
  if (route->what == http_route::kind::not_found) return {404, "text/plain", "not found\n"};
  auto params = nlohmann::json::array();
  for (auto& [k, v] : query) params.push_back({k, v});
  nlohmann::json doc{{"route", kind_name(route->what)}, {"path", path},     {"run_id", route->run_id},
                     {"id", std::to_string(route->run_id)}, {"offset", route->offset},
                     {"limit", route->limit},       {"query", params}};
  return {200, "application/json", doc.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace)};
}

// route_http on (path, query) against the reference, and the answer's dump.
void check_route(const std::string& path, const query_map& query) {
  std::optional<expected<http_route>> got;
  try {
    got.emplace(route_http(path, query));
  } catch (const std::exception& e) {
    die(std::string{"route_http threw: "} + e.what());
  }
  auto want = reference_route(path, query);
  auto& r = *got;
  if (!r) {
    check(!want, "route_http refused a request the reference reads");
    check(r.error().code == errc::invalid_argument, "a refused route is not invalid_argument");
    check(!r.error().what.empty(), "a refused route says nothing");
  } else {
    check(want.has_value(), "route_http accepted a request the reference refuses");
    check(r->what == want->what, "route_http chose another route than the reference");
    if (r->what == http_route::kind::run) {
      check(r->run_id == want->run_id, "run id differs from the reference");
      auto p = parse_decimal(path.substr(std::string{"/api/runs/"}.size()), "run id");
      check(p && *p == r->run_id, "run id is not parse_decimal's reading of the path");
    }
    if (r->what == http_route::kind::nodes) {
      check(r->limit <= max_nodes_page, "nodes limit above max_nodes_page");
      check(r->offset <= size_t{1} << 62, "nodes offset above 2^62");
      check(r->offset == want->offset && r->limit == want->limit, "nodes page differs from the reference");
    }
  }
  try {
    auto a = answer(path, query);
    check(a.status == (!r ? 400 : r->what == http_route::kind::not_found ? 404 : 200),
          "answer's status does not match its route");
  } catch (const std::exception& e) {
    die(std::string{"building or dumping the answer threw: "} + e.what());
  }
}

// --- the socket part -------------------------------------------------------

std::unique_ptr<http_service>& server() {
  static std::unique_ptr<http_service> s;
  return s;
}

// Whether `out` holds a whole answer: headers, then Content-Length bytes.
bool answer_complete(const std::string& out) {
  auto end = out.find("\r\n\r\n");
  if (end == std::string::npos) return false;
  std::string head = out.substr(0, end);
  for (auto& c : head) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  auto at = head.find("\r\ncontent-length:");
  if (at == std::string::npos) return true;
  auto length = std::strtoull(head.c_str() + at + 17, nullptr, 10);
  return out.size() - (end + 4) >= length;
}

// Writes `request` to a fresh connection and reads what comes back: until
// the server closes (`until_close`), or else until a whole answer came or
// the server said nothing for 20 ms (a request it is still waiting the rest
// of, which cpp-httplib would wait 5 s for). A half-closed connection is no
// way to end a request: cpp-httplib then drops its answer. The receive
// timeout only keeps a stuck server from hanging the fuzzer.
std::optional<std::string> exchange(const std::string& request, bool until_close) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) die("socket() failed");
  timeval tv{15, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(server()->port());
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(fd);
    return std::nullopt;
  }
  size_t sent = 0;
  while (sent < request.size()) {
    auto n = ::send(fd, request.data() + sent, request.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) break;  // the server may close early (a bad request line)
    sent += static_cast<size_t>(n);
  }
  std::string out;
  char buf[4096];
  bool closed = false;
  for (;;) {
    if (!until_close) {
      pollfd pfd{fd, POLLIN, 0};
      if (::poll(&pfd, 1, 20) <= 0) break;
    }
    auto n = ::recv(fd, buf, sizeof buf, 0);
    if (n == 0) {
      closed = true;
      break;
    }
    if (n < 0) break;  // reset, or the guard's timeout
    out.append(buf, static_cast<size_t>(n));
    if (!until_close && answer_complete(out)) break;
  }
  ::close(fd);
  if (until_close && !closed) return std::nullopt;
  return out;
}

void check_server(const std::string& raw) {
  auto got = exchange(raw, false);
  // An exception escaping the handler is answered 500 by http_service:
  // the boundary above never throws, so a 500 is a bug.
  if (got && got->compare(0, 12, "HTTP/1.1 500") == 0) die("the server answered 500: " + got->substr(0, 200));
  auto probe = exchange("GET /api/runs/1 HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n", true);
  if (!probe || probe->compare(0, 12, "HTTP/1.1 200") != 0 ||
      probe->find("\"run_id\":1") == std::string::npos)
    die("the server stopped answering a well-formed GET after this input: " +
        (probe ? probe->substr(0, 200) : std::string{"no answer"}));
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int* argc, char*** argv) {
  std::signal(SIGPIPE, SIG_IGN);
  for (int i = 1; i < *argc; ++i) {
    struct stat st{};
    if ((*argv)[i][0] != '-' && ::stat((*argv)[i], &st) == 0 && S_ISREG(st.st_mode)) socket_every = 1;
  }
  auto s = http_service::start(http_options{}, answer);
  if (!s) die("cannot start the HTTP service: " + s.error().what);
  server() = std::move(*s);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static unsigned count = 0;
  const std::string raw(reinterpret_cast<const char*>(data), size);
  // The request target: the first line's second word ("GET /x?y HTTP/1.1"),
  // or the whole line when it has no space.
  auto line = raw.substr(0, raw.find('\n'));
  if (!line.empty() && line.back() == '\r') line.pop_back();
  auto target = line;
  if (auto sp = line.find(' '); sp != std::string::npos) {
    auto end = line.find(' ', sp + 1);
    target = line.substr(sp + 1, end == std::string::npos ? std::string::npos : end - sp - 1);
  }
  auto q = target.find('?');
  auto path = target.substr(0, q);
  auto query = q == std::string::npos ? query_map{} : parse_query(target.substr(q + 1));
  check_route(percent_decode(path, false), query);
  // Undecoded too: the handler may get any bytes, '?' and '%' included.
  check_route(path, query);
  check_route(target, {});
  if (count++ % socket_every == 0) check_server(raw);
  return 0;
}
