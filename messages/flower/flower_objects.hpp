#pragma once

// Flower's content-addressed objects (Flower >= 1.20): a Message travels as a
// tree of objects — the Message, its RecordDict, each record, each Array and
// each Array's chunks — each named by the SHA-256 of its bytes. These are the
// rules Flower 1.23 follows (flwr/common/inflatable.py and the record
// classes), restated so that Stamen builds byte-identical objects and
// refuses any whose bytes do not hash to their id.
//
// An object's bytes: "<Class> <child-id>,<child-id>,... <body length>" in
// UTF-8, a NUL byte, then the body. Bodies:
// - ArrayChunk: raw bytes (at most `max_chunk_bytes` of an Array's data);
// - Array: JSON {"dtype", "shape", "stype", "arraychunk_ids"} where the ids
//   index the (de-duplicated) children, so equal chunks are one object;
// - ArrayRecord / RecordDict: JSON {name: child object id}, in order;
// - ConfigRecord / MetricRecord: the protobuf record (no children);
// - Message: protobuf Message with metadata (message_id blanked) and the
//   error if any; its one child is the content's RecordDict.
// JSON is written as Python's json.dumps writes it (", " and ": ", ASCII
// with \u escapes), since the ids of what Stamen sends must be Flower's.

#include <cstddef>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "messages/expected.hpp"
#include "messages/message.hpp"

namespace stamen::flower {

/// Flower's FLWR_PRIVATE_MAX_ARRAY_CHUNK_SIZE default: 5 MiB.
constexpr size_t max_chunk_bytes = 5242880;

/// Lowercase hex SHA-256 of `content` (Flower's get_object_id).
std::string object_id(std::string_view content);

/// Whether `id` is 64 hex digits.
bool is_object_id(std::string_view id);

/// An object's head and body, as views into its bytes.
struct object_view {
  std::string_view type;              ///< "Message", "RecordDict", "Array", ...
  std::vector<std::string> children;  ///< child ids, in head order
  std::string_view body;              ///< what follows the NUL divider
};

/// Splits an object into head and body; fails on a missing divider, a head
/// that is not three space-separated values, a child that is not an id, or a
/// body whose length is not the head's.
expected<object_view> parse_object(std::string_view content);

/// The bytes of an object of `type` with `children` and `body`.
std::string make_object(std::string_view type, const std::vector<std::string>& children,
                        std::string_view body);

/// Flower's ObjectTree: an object's id and its children's trees, in head order.
struct object_tree {
  std::string id;                      ///< the object's id (SHA-256 hex)
  std::vector<object_tree> children;   ///< its children's trees, in head order
};

/// Ids of a tree in post-order (children before parents), each once.
std::vector<std::string> post_order(const object_tree& tree);

/// A message as objects: every object's bytes by id, and the tree whose root
/// is the message (its id is what Flower uses as the message's id).
struct deflated_message {
  std::map<std::string, std::string> objects;  ///< every object's bytes, by id
  object_tree tree;                            ///< rooted at the Message object
};

/// Deflates `m` as Flower does. Fails (naming the key) on what Flower cannot
/// carry: a bfloat16 array, a non-UTF-8 key or string.
expected<deflated_message> deflate(const message& m);

/// Rebuilds a message from its root id and objects (each checked against its
/// id first). `message_id` is set to `root`. Fails, naming the record and key
/// where it can, on a missing or wrong-typed object, a malformed body, or an
/// array Stamen cannot represent.
expected<message> inflate(const std::string& root, const std::map<std::string, std::string>& objects);

/// JSON string literal as Python's json.dumps writes `s` (ensure_ascii);
/// fails on invalid UTF-8.
expected<std::string> python_json_string(std::string_view s);

}  // namespace stamen::flower
