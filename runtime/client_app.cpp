#include "runtime/client_app.hpp"

#include <stdexcept>

namespace stamen {

namespace {

// Wraps `inner` in `mods`, so that mods[0] runs first.
handler chain(const std::vector<mod>& mods, handler inner) {
  for (auto m = mods.rbegin(); m != mods.rend(); ++m)
    inner = [m = *m, next = std::move(inner)](const message& msg, context& ctx) {
      return m(msg, ctx, next);
    };
  return inner;
}

}  // namespace

client_app& client_app::add(std::string type, handler fn, std::vector<mod> mods) {
  if (auto ok = validate_message_type(type); !ok) throw std::invalid_argument(ok.error().what);
  if (!fn) throw std::invalid_argument("null handler for '" + type + "'");
  handlers_.insert_or_assign(std::move(type), chain(mods_, chain(mods, std::move(fn))));
  return *this;
}

client_app& client_app::train(handler fn, std::vector<mod> mods) {
  return add("train", std::move(fn), std::move(mods));
}
client_app& client_app::train(const std::string& action, handler fn, std::vector<mod> mods) {
  return add("train." + action, std::move(fn), std::move(mods));
}
client_app& client_app::evaluate(handler fn, std::vector<mod> mods) {
  return add("evaluate", std::move(fn), std::move(mods));
}
client_app& client_app::evaluate(const std::string& action, handler fn, std::vector<mod> mods) {
  return add("evaluate." + action, std::move(fn), std::move(mods));
}
client_app& client_app::query(handler fn, std::vector<mod> mods) {
  return add("query", std::move(fn), std::move(mods));
}
client_app& client_app::query(const std::string& action, handler fn, std::vector<mod> mods) {
  return add("query." + action, std::move(fn), std::move(mods));
}

std::vector<std::string> client_app::message_types() const {
  std::vector<std::string> out;
  for (auto& [type, fn] : handlers_) out.push_back(type);
  return out;
}

message client_app::handle(const message& instruction, context& ctx) const {
  auto& type = instruction.meta().message_type;
  auto* fn = handlers_.get(type);
  if (fn == nullptr)
    return make_error_reply(instruction,
                            {error_code::client_app_raised,
                             "ClientApp has no handler registered for message type '" + type + "'"});
  // Work on a copy so that a failing call leaves the node's context as it was.
  context scratch = ctx;
  try {
    message out = (*fn)(instruction, scratch);
    ctx = std::move(scratch);
    // Whatever metadata the handler set, the reply goes back to the sender.
    if (out.has_error()) return make_error_reply(instruction, out.error());
    return make_reply(instruction, std::move(out.content()));
  } catch (const std::exception& ex) {
    return make_error_reply(instruction, {error_code::client_app_raised, ex.what()});
  } catch (...) {
    return make_error_reply(instruction,
                            {error_code::client_app_raised, "ClientApp raised a non-standard exception"});
  }
}

}  // namespace stamen
