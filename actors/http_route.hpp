#pragma once

// What a GET to the superlink's HTTP side asks for, read from its path and
// query without trusting either: no CAF, no state, no exceptions, so that
// any request (fuzzed in tests/actors/http_fuzz.cpp) is answered with
// a route or a reason and never ends the process.

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>

#include "messages/expected.hpp"

namespace stamen {

/// A GET the superlink serves.
struct http_route {
  enum class kind {
    metrics,    ///< /metrics, Prometheus' text format
    dashboard,  ///< /, the dashboard page
    warnings,   ///< /api/warnings
    runs,       ///< /api/runs
    run,        ///< /api/runs/<id>
    nodes,      ///< /api/nodes[?offset=K&limit=N]
    not_found,  ///< anything else (404)
  };
  kind what = kind::dashboard;
  uint64_t run_id = 0;   ///< for `run`
  size_t offset = 0;     ///< for `nodes`: the first node of the page, by id
  size_t limit = 1000;   ///< for `nodes`: at most this many (at most max_nodes_page)
};

/// The largest page of /api/nodes.
inline constexpr size_t max_nodes_page = 10000;

/// Routes a GET of `path` (as the server decoded it) with query parameters
/// `query`. Fails with errc::invalid_argument, saying what is wrong, for a
/// malformed id or parameter (answered 400); a path the superlink does not
/// serve is the route `not_found` (404).
expected<http_route> route_http(const std::string& path, const std::multimap<std::string, std::string>& query);

/// A decimal number that fits 64 bits (leading zeros allowed); nothing
/// else (no sign, no space, no leading `+`). `what` names it in the error.
expected<uint64_t> parse_decimal(const std::string& text, const std::string& what);

}  // namespace stamen
