#include "messages/message.hpp"

#include <algorithm>
#include <chrono>

namespace stamen {

bool operator==(const metadata& a, const metadata& b) {
  return a.run_id == b.run_id && a.message_id == b.message_id &&
         a.src_node_id == b.src_node_id && a.dst_node_id == b.dst_node_id &&
         a.reply_to_message_id == b.reply_to_message_id && a.group_id == b.group_id &&
         a.created_at == b.created_at && a.ttl == b.ttl && a.message_type == b.message_type;
}

expected<void> validate_message_type(std::string_view type) {
  auto category = message_category(type);
  if (category != "train" && category != "evaluate" && category != "query")
    return fail(errc::invalid_message,
                "invalid message type '" + std::string{type} +
                    "': expected train, evaluate or query, optionally followed by .<action>");
  if (category.size() == type.size()) return {};
  auto action = type.substr(category.size() + 1);
  auto ok = [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '_' || c == '-';
  };
  if (action.empty() || !std::all_of(action.begin(), action.end(), ok))
    return fail(errc::invalid_message, "invalid action in message type '" + std::string{type} +
                                           "': use letters, digits, '_' or '-'");
  return {};
}

std::string_view message_category(std::string_view type) {
  return type.substr(0, type.find('.'));
}

double now_seconds() {
  using namespace std::chrono;
  return duration<double>(system_clock::now().time_since_epoch()).count();
}

expected<message> make_instruction(record_dict content, std::string message_type,
                                   uint64_t dst_node_id, std::string group_id, double ttl,
                                   uint64_t run_id) {
  if (auto ok = validate_message_type(message_type); !ok) return ok.error();
  if (!(ttl > 0)) return fail(errc::invalid_argument, "ttl must be positive");
  metadata m;
  m.run_id = run_id;
  m.src_node_id = server_node_id;
  m.dst_node_id = dst_node_id;
  m.group_id = std::move(group_id);
  m.created_at = now_seconds();
  m.ttl = ttl;
  m.message_type = std::move(message_type);
  return message{std::move(m), std::move(content)};
}

namespace {

metadata reply_metadata(const metadata& in) {
  metadata m;
  m.run_id = in.run_id;
  m.src_node_id = in.dst_node_id;
  m.dst_node_id = in.src_node_id;
  m.reply_to_message_id = in.message_id;
  m.group_id = in.group_id;
  m.created_at = now_seconds();
  // As in Flower: the reply lives only as long as its instruction had left.
  // Across hosts that is only as good as their clocks agree, so it never
  // exceeds the instruction's (Stamen's deadlines travel as time left and
  // never read it).
  m.ttl = std::clamp(in.ttl - (m.created_at - in.created_at), 0.0, std::max(0.0, in.ttl));
  m.message_type = in.message_type;
  return m;
}

}  // namespace

message make_reply(const message& instruction, record_dict content) {
  return message{reply_metadata(instruction.meta()), std::move(content)};
}

message make_error_reply(const message& instruction, message_error err) {
  return message{reply_metadata(instruction.meta()), std::move(err)};
}

message make_error_reply_to(std::string reply_to_message_id, uint64_t src_node_id,
                            message_error err) {
  metadata md;
  md.src_node_id = src_node_id;
  md.dst_node_id = server_node_id;
  md.reply_to_message_id = std::move(reply_to_message_id);
  md.created_at = now_seconds();
  md.message_type = "query";
  return message{std::move(md), std::move(err)};
}

}  // namespace stamen
