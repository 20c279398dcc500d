#include "messages/flower/flower_objects.hpp"

#include <openssl/evp.h>

#include <algorithm>
#include <cstdio>
#include <set>

#include <nlohmann/json.hpp>

#include "messages/flower/flower_records.hpp"

namespace stamen::flower {

namespace {

failure bad(std::string what) { return failure{errc::invalid_message, std::move(what)}; }

// The code point at s[i], advancing i; -1 on invalid UTF-8.
long next_code_point(std::string_view s, size_t& i) {
  auto c = static_cast<unsigned char>(s[i++]);
  if (c < 0x80) return c;
  int extra = c >= 0xf0 && c < 0xf5 ? 3 : c >= 0xe0 ? 2 : c >= 0xc2 && c < 0xe0 ? 1 : -1;
  if (extra < 0 || (c >= 0xf5)) return -1;
  long cp = c & (0x3f >> extra);
  for (int k = 0; k < extra; ++k) {
    if (i >= s.size()) return -1;
    auto d = static_cast<unsigned char>(s[i++]);
    if ((d & 0xc0) != 0x80) return -1;
    cp = (cp << 6) | (d & 0x3f);
  }
  static const long min_of[] = {0, 0x80, 0x800, 0x10000};
  if (cp < min_of[extra] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return -1;
  return cp;
}

void append_u(std::string& out, long unit) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "\\u%04x", static_cast<unsigned>(unit));
  out += buf;
}

// {"k": "v", ...} as json.dumps writes a dict of strings.
expected<std::string> json_refs(const std::vector<std::pair<std::string, std::string>>& refs) {
  std::string out = "{";
  bool first = true;
  for (const auto& [k, v] : refs) {
    auto key = python_json_string(k);
    if (!key) return failure{key.error().code, "key '" + k + "': " + key.error().what};
    if (!first) out += ", ";
    first = false;
    out += *key + ": \"" + v + "\"";
  }
  return out + "}";
}

std::string json_int_list(const std::vector<int64_t>& xs) {
  std::string out = "[";
  for (size_t i = 0; i < xs.size(); ++i) {
    if (i) out += ", ";
    out += std::to_string(xs[i]);
  }
  return out + "]";
}

// An object's tree, its bytes kept under `objects`; returns its id.
struct builder {
  std::map<std::string, std::string>& objects;

  object_tree add(std::string_view type, std::vector<object_tree> children, std::string_view body) {
    std::vector<std::string> ids;
    for (auto& c : children) ids.push_back(c.id);
    auto bytes = make_object(type, ids, body);
    object_tree t{object_id(bytes), std::move(children)};
    objects.emplace(t.id, std::move(bytes));
    return t;
  }

  expected<object_tree> add_array(const std::string& key, const array& a) {
    auto fa = to_flower(a);
    if (!fa) return failure{fa.error().code, "array '" + key + "': " + fa.error().what};
    // Chunks in data order; the head lists each distinct chunk once, in
    // order of first appearance, and the body indexes into that list.
    std::vector<object_tree> unique;
    std::vector<int64_t> index;
    std::string_view data = fa->data;
    for (size_t start = 0; start < data.size(); start += max_chunk_bytes) {
      auto chunk = add("ArrayChunk", {}, data.substr(start, std::min(max_chunk_bytes, data.size() - start)));
      auto at = std::find_if(unique.begin(), unique.end(), [&](auto& u) { return u.id == chunk.id; });
      index.push_back(at - unique.begin());
      if (at == unique.end()) unique.push_back(std::move(chunk));
    }
    std::string body = "{\"dtype\": \"" + fa->dtype + "\", \"shape\": " + json_int_list(fa->shape) +
                       ", \"stype\": \"" + fa->stype + "\", \"arraychunk_ids\": " + json_int_list(index) + "}";
    return add("Array", std::move(unique), body);
  }

  // A record whose children are keyed (ArrayRecord, RecordDict): the head
  // lists distinct children in first-appearance order (a Python dict keyed
  // by id), the body maps every key to its child's id.
  expected<object_tree> add_keyed(std::string_view type, std::vector<std::pair<std::string, object_tree>> items) {
    std::vector<object_tree> unique;
    std::vector<std::pair<std::string, std::string>> refs;
    for (auto& [key, tree] : items) {
      refs.emplace_back(key, tree.id);
      if (std::none_of(unique.begin(), unique.end(), [&](auto& u) { return u.id == tree.id; }))
        unique.push_back(std::move(tree));
    }
    auto body = json_refs(refs);
    if (!body) return body.error();
    return add(type, std::move(unique), *body);
  }
};

const std::string& fetch(const std::map<std::string, std::string>& objects, const std::string& id,
                         std::string_view what, failure& err) {
  static const std::string none;
  auto it = objects.find(id);
  if (it == objects.end()) {
    err = bad(std::string(what) + " object " + id + " is missing");
    return none;
  }
  return it->second;
}

// Reads a checked object of `type`; `what` names it in failures.
expected<object_view> open(const std::map<std::string, std::string>& objects, const std::string& id,
                           std::string_view type, const std::string& what) {
  failure err;
  const auto& bytes = fetch(objects, id, what, err);
  if (!err.what.empty()) return err;
  if (object_id(bytes) != id) return bad(what + ": object " + id + " does not hash to its id");
  auto view = parse_object(bytes);
  if (!view) return failure{view.error().code, what + ": " + view.error().what};
  if (view->type != type)
    return bad(what + ": object " + id + " is a " + std::string(view->type) + ", not a " + std::string(type));
  return view;
}

expected<nlohmann::ordered_json> parse_json(std::string_view body, const std::string& what) {
  auto j = nlohmann::ordered_json::parse(body.begin(), body.end(), nullptr, false);
  if (j.is_discarded() || !j.is_object()) return bad(what + ": body is not a JSON object");
  return j;
}

expected<array> inflate_array(const std::map<std::string, std::string>& objects, const std::string& id,
                              const std::string& what) {
  auto view = open(objects, id, "Array", what);
  if (!view) return view.error();
  auto j = parse_json(view->body, what);
  if (!j) return j.error();
  flower_array fa;
  std::vector<size_t> chunk_index;
  try {
    fa.dtype = j->at("dtype").get<std::string>();
    fa.stype = j->at("stype").get<std::string>();
    fa.shape = j->at("shape").get<std::vector<int64_t>>();
    chunk_index = j->at("arraychunk_ids").get<std::vector<size_t>>();
  } catch (const nlohmann::json::exception& e) {
    return bad(what + ": Array body lacks dtype, shape, stype or arraychunk_ids, or has the wrong types");
  }
  std::set<size_t> used;
  for (auto k : chunk_index) {
    if (k >= view->children.size()) return bad(what + ": chunk index " + std::to_string(k) + " is past the children");
    used.insert(k);
  }
  if (used.size() != view->children.size()) return bad(what + ": a child chunk is not used");
  // Each distinct chunk opened (and hashed) once; the whole held to what the
  // dtype and shape allow (a .npy header is at most 64 KiB), so that a few
  // indices repeated cannot make the node assemble terabytes.
  auto type = parse_dtype(fa.dtype);
  if (!type) return bad(what + ": dtype '" + fa.dtype + "' is not supported");
  auto payload = expected_nbytes(*type, fa.shape);
  if (!payload) return bad(what + ": " + payload.error().what);
  const uint64_t limit = *payload + (uint64_t{64} << 10) + 16;
  std::vector<std::string_view> chunks(view->children.size());
  for (size_t k = 0; k < chunks.size(); ++k) {
    auto chunk = open(objects, view->children[k], "ArrayChunk", what);
    if (!chunk) return chunk.error();
    if (!chunk->children.empty()) return bad(what + ": an ArrayChunk has children");
    chunks[k] = chunk->body;
  }
  uint64_t total = 0;
  for (auto k : chunk_index) {
    total += chunks[k].size();
    if (total > limit)
      return bad(what + ": its chunks add up to more than a " + fa.dtype + " array of its shape can hold");
  }
  fa.data.reserve(static_cast<size_t>(total));
  for (auto k : chunk_index) fa.data.append(chunks[k]);
  auto a = from_flower(fa);
  if (!a) return failure{a.error().code, what + ": " + a.error().what};
  return a;
}

// The keyed children of an ArrayRecord or RecordDict: each key with its
// child id, the set of ids matching the head's.
expected<std::vector<std::pair<std::string, std::string>>> keyed(const object_view& view, const std::string& what) {
  auto j = parse_json(view.body, what);
  if (!j) return j.error();
  std::vector<std::pair<std::string, std::string>> out;
  std::set<std::string> ids;
  for (auto& [k, v] : j->items()) {
    if (!v.is_string()) return bad(what + ": '" + k + "' does not map to an object id");
    out.emplace_back(k, v.get<std::string>());
    ids.insert(out.back().second);
  }
  if (ids != std::set<std::string>(view.children.begin(), view.children.end()))
    return bad(what + ": the body's object ids are not the head's children");
  return out;
}

}  // namespace

std::string object_id(std::string_view content) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  EVP_Digest(content.data(), content.size(), md, &n, EVP_sha256(), nullptr);
  static const char* hex = "0123456789abcdef";
  std::string out(2 * n, '0');
  for (unsigned i = 0; i < n; ++i) {
    out[2 * i] = hex[md[i] >> 4];
    out[2 * i + 1] = hex[md[i] & 15];
  }
  return out;
}

bool is_object_id(std::string_view id) {
  return id.size() == 64 &&
         std::all_of(id.begin(), id.end(), [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); });
}

expected<object_view> parse_object(std::string_view content) {
  auto nul = content.find('\0');
  if (nul == std::string_view::npos) return bad("object has no head (no NUL divider)");
  auto head = content.substr(0, nul);
  auto s1 = head.find(' ');
  auto s2 = s1 == std::string_view::npos ? s1 : head.find(' ', s1 + 1);
  if (s2 == std::string_view::npos || head.find(' ', s2 + 1) != std::string_view::npos)
    return bad("object head is not '<type> <children> <length>'");
  object_view out;
  out.type = head.substr(0, s1);
  auto children = head.substr(s1 + 1, s2 - s1 - 1);
  auto length = head.substr(s2 + 1);
  for (size_t start = 0; !children.empty();) {
    auto comma = children.find(',', start);
    auto id = children.substr(start, comma == std::string_view::npos ? comma : comma - start);
    if (!is_object_id(id)) return bad("object head lists a child that is not an object id");
    out.children.emplace_back(id);
    if (comma == std::string_view::npos) break;
    start = comma + 1;
  }
  if (length.empty() || length.size() > 19 ||
      !std::all_of(length.begin(), length.end(), [](char c) { return c >= '0' && c <= '9'; }))
    return bad("object head's body length is not a number");
  out.body = content.substr(nul + 1);
  if (std::stoull(std::string(length)) != out.body.size())
    return bad("object body is " + std::to_string(out.body.size()) + " bytes, its head says " + std::string(length));
  return out;
}

std::string make_object(std::string_view type, const std::vector<std::string>& children, std::string_view body) {
  std::string out(type);
  out += ' ';
  for (size_t i = 0; i < children.size(); ++i) {
    if (i) out += ',';
    out += children[i];
  }
  out += ' ';
  out += std::to_string(body.size());
  out += '\0';
  out.append(body);
  return out;
}

std::vector<std::string> post_order(const object_tree& tree) {
  std::vector<std::string> out;
  std::set<std::string> seen;
  auto walk = [&](auto& self, const object_tree& t) -> void {
    for (auto& c : t.children) self(self, c);
    if (seen.insert(t.id).second) out.push_back(t.id);
  };
  walk(walk, tree);
  return out;
}

expected<std::string> python_json_string(std::string_view s) {
  std::string out = "\"";
  for (size_t i = 0; i < s.size();) {
    long cp = next_code_point(s, i);
    if (cp < 0) return bad("is not valid UTF-8");
    switch (cp) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      default:
        if (cp < 0x20 || (cp >= 0x7f && cp < 0x10000)) {
          append_u(out, cp);
        } else if (cp >= 0x10000) {
          long v = cp - 0x10000;
          append_u(out, 0xd800 + (v >> 10));
          append_u(out, 0xdc00 + (v & 0x3ff));
        } else {
          out += static_cast<char>(cp);
        }
    }
  }
  return out + "\"";
}

expected<deflated_message> deflate(const message& m) {
  deflated_message out;
  builder b{out.objects};
  std::vector<object_tree> children;
  const message_error* err = m.has_error() ? &m.error() : nullptr;
  if (m.has_content()) {
    std::vector<std::pair<std::string, object_tree>> records;
    for (const auto& [name, rec] : m.content()) {
      expected<object_tree> tree = std::visit(
          [&](const auto& r) -> expected<object_tree> {
            using T = std::decay_t<decltype(r)>;
            if constexpr (std::is_same_v<T, array_record>) {
              std::vector<std::pair<std::string, object_tree>> arrays;
              for (const auto& [key, a] : r) {
                auto t = b.add_array(key, a);
                if (!t) return failure{t.error().code, "record '" + name + "': " + t.error().what};
                arrays.emplace_back(key, std::move(*t));
              }
              auto t = b.add_keyed("ArrayRecord", std::move(arrays));
              if (!t) return failure{t.error().code, "record '" + name + "': " + t.error().what};
              return t;
            } else if constexpr (std::is_same_v<T, config_record>) {
              auto body = config_record_body(r);
              if (!body) return failure{body.error().code, "record '" + name + "': " + body.error().what};
              return b.add("ConfigRecord", {}, *body);
            } else {
              auto body = metric_record_body(r);
              if (!body) return failure{body.error().code, "record '" + name + "': " + body.error().what};
              return b.add("MetricRecord", {}, *body);
            }
          },
          rec);
      if (!tree) return tree.error();
      records.emplace_back(name, std::move(*tree));
    }
    auto content = b.add_keyed("RecordDict", std::move(records));
    if (!content) return content.error();
    children.push_back(std::move(*content));
  }
  out.tree = b.add("Message", std::move(children), message_body(m.meta(), err));
  return out;
}

expected<message> inflate(const std::string& root, const std::map<std::string, std::string>& objects) {
  auto view = open(objects, root, "Message", "message");
  if (!view) return view.error();
  auto head = parse_message_body(view->body);
  if (!head) return head.error();
  head->meta.message_id = root;
  if (head->error) {
    if (!view->children.empty()) return bad("message: an error reply has children");
    return message(std::move(head->meta), std::move(*head->error));
  }
  if (view->children.size() != 1) return bad("message: content must be exactly one RecordDict child");
  auto rd = open(objects, view->children[0], "RecordDict", "content");
  if (!rd) return rd.error();
  auto items = keyed(*rd, "content");
  if (!items) return items.error();
  record_dict content;
  for (const auto& [name, id] : *items) {
    std::string what = "record '" + name + "'";
    failure err;
    const auto& bytes = fetch(objects, id, what, err);
    if (!err.what.empty()) return err;
    auto rv = parse_object(bytes);
    if (!rv) return failure{rv.error().code, what + ": " + rv.error().what};
    if (object_id(bytes) != id) return bad(what + ": object " + id + " does not hash to its id");
    if (rv->type == "ArrayRecord") {
      auto arrays = keyed(*rv, what);
      if (!arrays) return arrays.error();
      array_record ar;
      for (const auto& [key, aid] : *arrays) {
        auto a = inflate_array(objects, aid, what + ", array '" + key + "'");
        if (!a) return a.error();
        ar.insert_or_assign(key, std::move(*a));
      }
      content.insert_or_assign(name, std::move(ar));
    } else if (rv->type == "ConfigRecord" || rv->type == "MetricRecord") {
      if (!rv->children.empty()) return bad(what + ": a " + std::string(rv->type) + " has children");
      if (rv->type == "ConfigRecord") {
        auto c = parse_config_record_body(rv->body);
        if (!c) return failure{c.error().code, what + ": " + c.error().what};
        content.insert_or_assign(name, std::move(*c));
      } else {
        auto mr = parse_metric_record_body(rv->body);
        if (!mr) return failure{mr.error().code, what + ": " + mr.error().what};
        content.insert_or_assign(name, std::move(*mr));
      }
    } else {
      return bad(what + ": object type '" + std::string(rv->type) + "' is not a record");
    }
  }
  return message(std::move(head->meta), std::move(content));
}

}  // namespace stamen::flower
