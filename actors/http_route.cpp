#include "actors/http_route.hpp"

#include <algorithm>
#include <charconv>

namespace stamen {

expected<uint64_t> parse_decimal(const std::string& text, const std::string& what) {
  auto shown = text.size() > 40 ? text.substr(0, 40) + "..." : text;
  if (text.empty() || text.find_first_not_of("0123456789") != std::string::npos)
    return fail(errc::invalid_argument, what + " '" + shown + "' is not a decimal number");
  uint64_t x = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), x);
  if (ec != std::errc{} || end != text.data() + text.size())
    return fail(errc::invalid_argument, what + " '" + shown + "' is larger than 2^64 - 1");
  return x;
}

expected<http_route> route_http(const std::string& path, const std::multimap<std::string, std::string>& query) {
  http_route r;
  if (path == "/metrics") r.what = http_route::kind::metrics;
  else if (path == "/") r.what = http_route::kind::dashboard;
  else if (path == "/api/warnings") r.what = http_route::kind::warnings;
  else if (path == "/api/runs") r.what = http_route::kind::runs;
  else if (path == "/api/nodes") r.what = http_route::kind::nodes;
  else if (const std::string prefix = "/api/runs/"; path.rfind(prefix, 0) == 0) {
    auto id = parse_decimal(path.substr(prefix.size()), "run id");
    if (!id) return id.error();
    r.what = http_route::kind::run;
    r.run_id = *id;
  } else {
    r.what = http_route::kind::not_found;
  }
  if (r.what != http_route::kind::nodes) return r;
  for (auto [key, target] : {std::pair{"offset", &r.offset}, std::pair{"limit", &r.limit}}) {
    auto n = query.count(key);
    if (n == 0) continue;
    if (n > 1) return fail(errc::invalid_argument, std::string{"'"} + key + "' is given more than once");
    auto x = parse_decimal(query.find(key)->second, key);
    if (!x) return x.error();
    *target = static_cast<size_t>(*x);
  }
  if (r.limit > max_nodes_page) r.limit = max_nodes_page;
  // Past any real table, and within what SQLite's signed offsets take.
  r.offset = std::min<size_t>(r.offset, size_t{1} << 62);
  return r;
}

}  // namespace stamen
