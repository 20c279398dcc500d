#pragma once

// Stamen's metadata and object trees as the Fleet API's protobuf messages,
// for what speaks them (the Flower SuperNode, the Message object's body, the
// tests' fake SuperLink). Includes the generated protobuf header: not for
// app code.

#include "fleet.pb.h"
#include "messages/flower/flower_objects.hpp"
#include "messages/message.hpp"

namespace stamen::flower {

/// Every field of `m`, message_id included.
void to_proto(const metadata& m, flwr::proto::Metadata* out);
/// Every field of `m`.
metadata from_proto(const flwr::proto::Metadata& m);

/// The tree, children in order.
void to_proto(const object_tree& t, flwr::proto::ObjectTree* out);
/// The tree, children in order.
object_tree from_proto(const flwr::proto::ObjectTree& t);

}  // namespace stamen::flower
