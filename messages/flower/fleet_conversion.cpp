#include "messages/flower/fleet_conversion.hpp"

namespace stamen::flower {

void to_proto(const metadata& m, flwr::proto::Metadata* out) {
  out->set_run_id(m.run_id);
  out->set_message_id(m.message_id);
  out->set_src_node_id(m.src_node_id);
  out->set_dst_node_id(m.dst_node_id);
  out->set_reply_to_message_id(m.reply_to_message_id);
  out->set_group_id(m.group_id);
  out->set_ttl(m.ttl);
  out->set_message_type(m.message_type);
  out->set_created_at(m.created_at);
}

metadata from_proto(const flwr::proto::Metadata& m) {
  metadata out;
  out.run_id = m.run_id();
  out.message_id = m.message_id();
  out.src_node_id = m.src_node_id();
  out.dst_node_id = m.dst_node_id();
  out.reply_to_message_id = m.reply_to_message_id();
  out.group_id = m.group_id();
  out.ttl = m.ttl();
  out.message_type = m.message_type();
  out.created_at = m.created_at();
  return out;
}

void to_proto(const object_tree& t, flwr::proto::ObjectTree* out) {
  out->set_object_id(t.id);
  for (const auto& c : t.children) to_proto(c, out->add_children());
}

object_tree from_proto(const flwr::proto::ObjectTree& t) {
  object_tree out{t.object_id(), {}};
  for (const auto& c : t.children()) out.children.push_back(from_proto(c));
  return out;
}

}  // namespace stamen::flower
