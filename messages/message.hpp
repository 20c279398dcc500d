#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <variant>

#include "messages/expected.hpp"
#include "messages/record_dict.hpp"

namespace stamen {

/// Flower's Error codes, carried by a reply that has no content.
namespace error_code {
/// Flower's UNKNOWN: no better code applies (a malformed reply, an undecodable instruction).
constexpr int64_t unknown = 0;
/// Flower's LOAD_CLIENT_APP_EXCEPTION: the node could not load the ClientApp.
constexpr int64_t load_client_app = 1;
/// Flower's CLIENT_APP_RAISED_EXCEPTION: a handler threw; the reason is its what().
constexpr int64_t client_app_raised = 2;
/// Flower's MESSAGE_UNAVAILABLE: the instruction is gone (e.g. its TTL expired).
constexpr int64_t message_unavailable = 3;
/// Flower's REPLY_MESSAGE_UNAVAILABLE: no reply in time (a timeout, or a late instruction).
constexpr int64_t reply_unavailable = 4;
/// Flower's NODE_UNAVAILABLE: the destination node is not connected.
constexpr int64_t node_unavailable = 5;
/// Flower's MOD_FAILED_PRECONDITION: a mod refused the message.
constexpr int64_t mod_failed_precondition = 6;
/// Flower's CLIENT_APP_CRASHED: the ClientApp stopped responding (7, INVALID_FAB, is unused).
constexpr int64_t client_app_crashed = 8;
}  // namespace error_code

/// Flower's Error: what a reply carries instead of content when the node failed.
struct message_error {
  /// One of `error_code`; kept as an integer so unknown codes survive a round trip.
  int64_t code = error_code::unknown;
  std::string reason;  ///< human-readable cause, as Flower's `Error.reason`

  /// Equal code and reason.
  friend bool operator==(const message_error& a, const message_error& b) {
    return a.code == b.code && a.reason == b.reason;
  }
};

/// Default time-to-live of an instruction, as in Flower (12 hours).
constexpr double default_ttl_seconds = 43200.0;

/// The node id that stands for the server side (Flower's SUPERLINK_NODE_ID).
constexpr uint64_t server_node_id = 1;

/// Flower's Metadata.
struct metadata {
  /// The run this message belongs to; 0 until a grid or a superlink sets it.
  uint64_t run_id = 0;
  /// Unique id, assigned when the message is pushed (empty before).
  std::string message_id;
  uint64_t src_node_id = 0;  ///< sender; `server_node_id` for an instruction
  uint64_t dst_node_id = 0;  ///< receiver; `server_node_id` for a reply
  /// On a reply, the instruction's `message_id`; empty on an instruction.
  std::string reply_to_message_id;
  /// Free-form tag, copied into replies (Flower uses the round number).
  std::string group_id;
  double created_at = 0;  ///< seconds since the Unix epoch
  double ttl = default_ttl_seconds;  ///< seconds
  /// `train` | `evaluate` | `query`, optionally `.action` (see `validate_message_type`).
  std::string message_type;

  /// Equal in every field, `created_at` and `ttl` included.
  friend bool operator==(const metadata& a, const metadata& b);
};

/// Checks `train` | `evaluate` | `query`, optionally followed by `.action`
/// where the action is a non-empty run of letters, digits, '_' or '-'.
expected<void> validate_message_type(std::string_view type);

/// The part of a message type before the dot ("train" for "train.custom").
std::string_view message_category(std::string_view type);

/// Seconds since the Unix epoch, as Flower's `created_at`.
double now_seconds();

/// Flower's Message: metadata and either content or an error, never both.
class message {
 public:
  /// A message with empty content and default metadata.
  message() = default;
  /// A message that carries `content` (an instruction, or a successful reply).
  message(metadata meta, record_dict content) : meta_(std::move(meta)), body_(std::move(content)) {}
  /// A reply that carries `err` instead of content.
  message(metadata meta, message_error err) : meta_(std::move(meta)), body_(std::move(err)) {}

  /// Flower's `Message.metadata`.
  const metadata& meta() const { return meta_; }
  /// Mutable metadata, for the grid and the links that stamp ids and run.
  metadata& meta() { return meta_; }

  /// Whether the message carries a RecordDict; exactly one of this and `has_error()` holds.
  bool has_content() const { return body_.index() == 0; }
  /// Whether the message is an error reply (Flower's `Message.has_error()`).
  bool has_error() const { return body_.index() == 1; }

  /// Precondition: has_content().
  const record_dict& content() const { return std::get<0>(body_); }
  /// Precondition: has_content().
  record_dict& content() { return std::get<0>(body_); }

  /// Precondition: has_error().
  const message_error& error() const { return std::get<1>(body_); }

  /// Equal metadata and equal content or error.
  friend bool operator==(const message& a, const message& b) {
    return a.meta_ == b.meta_ && a.body_ == b.body_;
  }

 private:
  metadata meta_;
  std::variant<record_dict, message_error> body_;
};

/// Builds an instruction from the server to `dst_node_id`; fails on a bad message type.
expected<message> make_instruction(record_dict content, std::string message_type,
                                   uint64_t dst_node_id, std::string group_id = {},
                                   double ttl = default_ttl_seconds, uint64_t run_id = 0);

/// Builds the reply to `instruction`: source and destination swapped, same run,
/// group and type, `reply_to_message_id` set, and what is left of the TTL.
message make_reply(const message& instruction, record_dict content);

/// Same as make_reply, carrying an error instead of content.
message make_error_reply(const message& instruction, message_error err);

/// An error reply from `src_node_id` to the instruction `reply_to_message_id`
/// when the instruction itself cannot be read (it did not decode): only the
/// ids are known, so the type is set to `query`.
message make_error_reply_to(std::string reply_to_message_id, uint64_t src_node_id,
                            message_error err);

}  // namespace stamen
