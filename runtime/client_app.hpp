#pragma once

#include <functional>
#include <string>
#include <vector>

#include "messages/context.hpp"
#include "messages/message.hpp"
#include "messages/ordered_map.hpp"

namespace stamen {

/// A ClientApp handler: answers one instruction.
using handler = std::function<message(const message&, context&)>;

/// Middleware around a handler: may inspect or change the instruction, the
/// context and the reply, and decides whether to call `next`.
using mod = std::function<message(const message&, context&, const handler& next)>;

/// Flower's ClientApp: handlers registered per message type, with optional
/// mods app-wide and per handler (outermost first: app mods, then handler mods).
/// Each registration call takes the handler's own mods, returns the app for
/// chaining, replaces an earlier handler of the same type, and throws
/// std::invalid_argument on a null handler or an invalid action.
class client_app {
 public:
  /// An app with no handlers; `mods` wrap every handler registered after.
  explicit client_app(std::vector<mod> mods = {}) : mods_(std::move(mods)) {}

  /// Registers the handler for `train`; the named form answers `train.<action>`.
  client_app& train(handler fn, std::vector<mod> mods = {});
  /// Registers the handler for `train.<action>` (Flower's `app.train("action")` decorator).
  client_app& train(const std::string& action, handler fn, std::vector<mod> mods = {});
  /// Registers the handler for `evaluate`.
  client_app& evaluate(handler fn, std::vector<mod> mods = {});
  /// Registers the handler for `evaluate.<action>`.
  client_app& evaluate(const std::string& action, handler fn, std::vector<mod> mods = {});
  /// Registers the handler for `query`.
  client_app& query(handler fn, std::vector<mod> mods = {});
  /// Registers the handler for `query.<action>`.
  client_app& query(const std::string& action, handler fn, std::vector<mod> mods = {});

  /// Runs `instruction` through the mods and its handler and returns the reply.
  /// Never throws: an unregistered type, or a mod or handler that throws,
  /// yields an error reply (code 2 with the reason), and then the changes made
  /// to `ctx` during the call are discarded.
  message handle(const message& instruction, context& ctx) const;

  /// The message types this app answers, in registration order.
  std::vector<std::string> message_types() const;

 private:
  client_app& add(std::string type, handler fn, std::vector<mod> mods);

  std::vector<mod> mods_;
  /// Each handler already wrapped in its mods and the app's, at registration.
  ordered_map<handler> handlers_;
};

}  // namespace stamen
