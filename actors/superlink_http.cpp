#include "actors/superlink_state.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <map>
#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

#include "actors/dashboard_page.hpp"
#include "actors/http_route.hpp"
#include "actors/run_store.hpp"

namespace stamen::superlink_detail {

// The HTTP side's GETs, answered here so that state is read on this thread.
std::vector<std::string> on_http(broker_ptr self, const std::vector<std::string>& request) {
  auto& st = self->state;
  // Strings that came from peers (app names, reply ids in warnings) may be
  // any bytes: invalid UTF-8 is replaced, never a reason to throw.
  auto json = [](nlohmann::json doc) {
    return std::vector<std::string>{"200", "application/json",
                                    doc.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace)};
  };
  auto err = [](const std::string& why) { return std::vector<std::string>{"500", "text/plain", why + "\n"}; };
  std::multimap<std::string, std::string> query;
  for (size_t i = 1; i + 1 < request.size(); i += 2) query.emplace(request[i], request[i + 1]);
  auto route = route_http(request.empty() ? std::string{} : request.front(), query);
  if (!route) return {"400", "text/plain", route.error().what + "\n"};
  using kind = http_route::kind;
  if (route->what == kind::not_found) return {"404", "text/plain", "not found\n"};
  if (route->what == kind::metrics) {
    auto counts = st.store->count_by_status();
    if (!counts) return err(counts.error().what);
    return {"200", "text/plain; version=0.0.4", st.metrics.render(st.by_node.size(), *counts)};
  }
  if (route->what == kind::dashboard) return {"200", "text/html; charset=utf-8", dashboard_page()};
  if (route->what == kind::warnings) {
    std::lock_guard<std::mutex> guard{st.warnings->mtx};
    return json(nlohmann::json(std::vector<std::string>(st.warnings->lines.begin(), st.warnings->lines.end())));
  }
  if (route->what == kind::runs) {
    auto runs = st.store->runs();
    if (!runs) return err(runs.error().what);
    auto out = nlohmann::json::array();
    for (auto& r : *runs) out.push_back(run_json(r));
    return json(out);
  }
  if (route->what == kind::nodes) {
    // A page of the connected nodes, by id (?offset=K&limit=N, at most
    // 10,000; default the first 1,000): a federation of 100,000 nodes is
    // not one answer, and this broker builds it between frames.
    size_t offset = route->offset, limit = route->limit;
    std::vector<uint64_t> ids;
    ids.reserve(st.by_node.size());
    for (auto& [id, hdl] : st.by_node) ids.push_back(id);
    // Only the page is put in order (linear selection, then a sort of at
    // most `limit` ids): a poll of a 100,000-node federation's first page
    // costs this broker a pass over the ids, not a sort of all of them.
    if (offset < ids.size()) {
      auto first = ids.begin() + static_cast<std::ptrdiff_t>(offset);
      auto last = ids.begin() + static_cast<std::ptrdiff_t>(std::min(ids.size(), offset + limit));
      if (offset > 0) std::nth_element(ids.begin(), first, ids.end());
      if (last != ids.end()) std::nth_element(first, last, ids.end());
      std::sort(first, last);
    }
    auto out = nlohmann::json{{"connected", nlohmann::json::array()}, {"known", nlohmann::json::array()},
                              {"connected_total", ids.size()}, {"offset", offset}, {"limit", limit}};
    for (size_t i = offset; i < ids.size() && i < offset + limit; ++i) {
      auto id = ids[i];
      auto hdl = st.by_node.at(id);
      auto& pr = st.peers.at(hdl);
      auto a = st.activity.find(id);
      // Heartbeats are per link: a link's nodes share its last one.
      out["connected"].push_back({{"node_id", id},
                                  {"id", std::to_string(id)},
                                  {"address", pr.where},
                                  {"connected_since", pr.joined_at},
                                  {"last_heartbeat", unix_now() - pr.alive.silent_s()},
                                  {"runs_served", a == st.activity.end() ? 0 : a->second.runs.size()},
                                  {"replies", a == st.activity.end() ? 0 : a->second.replies},
                                  {"failures", a == st.activity.end() ? 0 : a->second.failures}});
    }
    auto known = st.store->nodes(offset, limit);
    auto known_total = st.store->node_count();
    if (!known_total) return err(known_total.error().what);
    out["known_total"] = *known_total;
    if (!known) return err(known.error().what);
    for (auto& k : *known) out["known"].push_back(nlohmann::json::parse(k, nullptr, false));
    return json(out);
  }
  {
    auto id = route->run_id;
    auto rec = st.store->run(id);
    if (!rec) return err(rec.error().what);
    if (!*rec) return {"404", "text/plain", "no run " + std::to_string(id) + "\n"};
    auto rounds = st.store->rounds(id);
    if (!rounds) return err(rounds.error().what);
    auto doc = run_json(**rec);
    doc["history"] = nlohmann::json::array();
    for (auto& r : *rounds) doc["history"].push_back(nlohmann::json::parse(r, nullptr, false));
    return json(doc);
  }
}

}  // namespace stamen::superlink_detail
