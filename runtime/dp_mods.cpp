#include "runtime/dp_mods.hpp"

#include <memory>
#include <mutex>
#include <random>
#include <stdexcept>

#include "runtime/strategy/differential_privacy.hpp"
#include "runtime/format.hpp"

namespace stamen {

namespace {

message refuse(const message& msg, const std::string& mod_name, const std::string& why) {
  return make_error_reply(msg, {error_code::mod_failed_precondition, mod_name + ": " + why});
}

// The single ArrayRecord of a RecordDict, or why there is not exactly one.
expected<std::pair<std::string, array_record*>> only_arrays(record_dict& content) {
  std::pair<std::string, array_record*> out{"", nullptr};
  size_t n = 0;
  for (auto& [name, rec] : content)
    if (auto* a = std::get_if<array_record>(&rec)) out = {name, a}, ++n;
  if (n != 1)
    return fail(errc::invalid_message,
                "expects exactly one ArrayRecord, found " + std::to_string(n));
  return out;
}

// Calls the handler, then clips its update against the instruction's arrays.
// Returns the reply, or an error reply; `clipped` says whether it was scaled.
message clip_around(const message& msg, context& ctx, const handler& next,
                    const std::string& mod_name, double clipping_norm, bool* clipped) {
  record_dict in = msg.content();
  auto sent = only_arrays(in);
  if (!sent) return refuse(msg, mod_name, "the instruction " + sent.error().what);
  auto reply = next(msg, ctx);
  if (reply.has_error()) return reply;
  auto got = only_arrays(reply.content());
  if (!got) return refuse(msg, mod_name, "the reply " + got.error().what);
  auto c = clip_update(*got->second, *sent->second, clipping_norm);
  if (!c)
    return refuse(msg, mod_name,
                  "the reply's arrays do not match the instruction's: " + c.error().what);
  *got->second = std::move(c->arrays);
  if (clipped) *clipped = c->clipped;
  return reply;
}

expected<double> clipping_norm_of(const message& msg) {
  size_t configs = 0;
  const config_record* config = nullptr;
  for (auto& [name, rec] : msg.content())
    if (auto* c = std::get_if<config_record>(&rec)) config = c, ++configs;
  if (configs != 1)
    return fail(errc::invalid_message,
                "expects exactly one ConfigRecord, found " + std::to_string(configs));
  if (!config->contains(key_clipping_norm))
    return fail(errc::invalid_message,
                std::string{"requires '"} + key_clipping_norm +
                    "' in the ConfigRecord; is the ServerApp's strategy wrapped in a client-side "
                    "DP strategy?");
  double c = config_double(*config, key_clipping_norm);
  if (!(c > 0)) return fail(errc::invalid_message, "clipping_norm must be > 0, got " + format_double("%g", c));
  return c;
}

}  // namespace

message fixedclipping_mod(const message& msg, context& ctx, const handler& next) {
  auto c = clipping_norm_of(msg);
  if (!c) return refuse(msg, "fixedclipping_mod", c.error().what);
  return clip_around(msg, ctx, next, "fixedclipping_mod", *c, nullptr);
}

message adaptiveclipping_mod(const message& msg, context& ctx, const handler& next) {
  auto c = clipping_norm_of(msg);
  if (!c) return refuse(msg, "adaptiveclipping_mod", c.error().what);
  bool clipped = false;
  auto reply = clip_around(msg, ctx, next, "adaptiveclipping_mod", *c, &clipped);
  if (reply.has_error()) return reply;
  metric_record* metrics = nullptr;
  size_t n = 0;
  for (auto& [name, rec] : reply.content())
    if (auto* m = std::get_if<metric_record>(&rec)) metrics = m, ++n;
  if (n != 1)
    return refuse(msg, "adaptiveclipping_mod",
                  "the reply expects exactly one MetricRecord, found " + std::to_string(n));
  metrics->insert_or_assign(key_norm_bit, int64_t{clipped ? 0 : 1});
  return reply;
}

mod local_dp_mod(local_dp_options o) {
  if (!(o.clipping_norm > 0)) throw std::invalid_argument("The clipping norm should be a positive value.");
  if (!(o.sensitivity >= 0)) throw std::invalid_argument("The sensitivity should be a non-negative value.");
  if (!(o.epsilon > 0)) throw std::invalid_argument("Epsilon should be a positive value.");
  if (!(o.delta > 0 && o.delta < 1)) throw std::invalid_argument("Delta should lie in (0, 1).");
  struct state {
    std::mutex mtx;
    std::mt19937_64 rng;
  };
  auto st = std::make_shared<state>();
  st->rng.seed(o.seed);
  double stddev = local_dp_stddev(o.sensitivity, o.epsilon, o.delta);
  return [o, st, stddev](const message& msg, context& ctx, const handler& next) {
    auto reply = clip_around(msg, ctx, next, "LocalDpMod", o.clipping_norm, nullptr);
    if (reply.has_error()) return reply;
    auto got = only_arrays(reply.content());
    std::lock_guard<std::mutex> lock(st->mtx);
    add_gaussian_noise(*got->second, stddev, st->rng);
    return reply;
  };
}

}  // namespace stamen
