#pragma once

// The superlink's HTTP side (off unless asked for): Prometheus metrics and
// a JSON API, served by Debian's cpp-httplib on threads of its own. What it
// serves comes from a callback (the superlink's broker answers it), so that
// every piece of state is still read on the broker's thread only.

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "config/tls_files.hpp"
#include "messages/expected.hpp"

namespace stamen {

struct http_options {
  std::string address = "127.0.0.1";  ///< where to listen (loopback unless told)
  uint16_t port = 0;                  ///< 0: any free port
  std::optional<tls_files> tls;       ///< HTTPS with the superlink's certificate
};

/// An answer: HTTP status, content type, body.
struct http_answer {
  int status = 404;
  std::string content_type = "text/plain";
  std::string body = "not found\n";
};

/// Answers a GET of `path` (as decoded: it may hold any byte, '?' too) with
/// the query's parameters, neither of them checked yet.
using http_handler = std::function<http_answer(const std::string& path,
                                               const std::multimap<std::string, std::string>& query)>;

class http_service {
 public:
  /// Listens and serves GETs through `handler` until destroyed. Fails when
  /// the address cannot be bound or the TLS files cannot be loaded.
  static expected<std::unique_ptr<http_service>> start(const http_options& opts, http_handler handler);
  ~http_service();
  http_service(const http_service&) = delete;
  http_service& operator=(const http_service&) = delete;

  uint16_t port() const { return port_; }

 private:
  http_service() = default;
  struct impl;
  std::unique_ptr<impl> impl_;
  uint16_t port_ = 0;
};

}  // namespace stamen
