// libFuzzer target: the superlink's frame reader, as one connection's bytes
// after its challenge went out. The first input byte says how the bytes
// arrive, the rest is the stream:
//   bits 0-5  read chunk - 1 (payloads come 1..64 bytes at a time)
//   bit 6     the peer is still pending (its first frame must be a hello,
//             under the handshake limit); else it is a node already
//   bit 7     every other payload read goes through payload_target() and
//             placed(), as a TLS session decrypting in place
// Frames are read exactly as a broker does (next_read() bytes at a time;
// bytes short of a whole read are a connection that closed) and dispatched
// as superlink.cpp's on_frame does: ping ignored, hello (read_hello) while
// pending, then fetch (a bundle hash of at most 64 bytes, nothing after it)
// and reply (read_envelope, then the message decoded with a 1 MiB limit);
// anything else drops the connection, which ends the input. A challenge is
// read with read_challenge (what a node does with it) before that drop.
// A header over the limit must be refused before anything is allocated.
// A header whose version byte is 0 (a version no build speaks) is read as
// this build's version: seeds and saved crashes stay valid when
// wire::version changes, and every other wrong version still reaches the
// check.
//
// Built and run by CTest (fuzz_frame, 60 s, see tests/actors/CMakeLists.txt).
// Longer, by hand:
//   cmake -DSTAMEN_FUZZ_SECONDS=3600 . && ctest -R fuzz_frame
// or directly, with a corpus that grows in the build tree:
//   mkdir -p corpus && cp tests/actors/fuzz_inputs/frame/seeds/* corpus/
//   build/bin/frame_fuzz -max_total_time=3600 -rss_limit_mb=2048 -max_len=16384 corpus
// A crash leaves crash-<sha1> behind: copy it to
// tests/actors/fuzz_inputs/frame/crashes/ so that fuzz_replay keeps it.
#include <sanitizer/allocator_interface.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "actors/handshake.hpp"
#include "actors/wire_frame.hpp"
#include "messages/codec.hpp"

namespace {

using namespace stamen;
using namespace stamen::wire;

constexpr uint64_t handshake_limit = 64 << 10;  // link_options::max_handshake_frame
constexpr uint64_t frame_limit = 1 << 20;       // a node's frames, here

[[noreturn]] void die(const std::string& why) {
  std::fprintf(stderr, "frame_fuzz: %s\n", why.c_str());
  std::abort();
}

void check(bool ok, const char* what) {
  if (!ok) die(what);
}

// The largest block malloc'ed while `watching` (a header being read).
std::atomic<bool> watching{false};
std::atomic<size_t> largest{0};

void on_malloc(const volatile void*, size_t size) {
  if (!watching.load(std::memory_order_relaxed)) return;
  size_t seen = largest.load(std::memory_order_relaxed);
  while (size > seen && !largest.compare_exchange_weak(seen, size)) {
  }
}
void on_free(const volatile void*) {}

// A deadline crosses as the time it has left, set against the reader's
// clock: written and read again it is no deadline iff it was none, and one
// that had passed stays passed (one with time left may run out between).
bool same_deadline_kind(double again, double first) {
  if ((first == 0) != (again == 0)) return false;
  return first != deadline_passed || again == deadline_passed;
}

void on_challenge(const buffer& payload) {
  auto c = read_challenge(payload);
  if (!c) return;
  check(c->nonce.size() <= 1024, "challenge nonce over its limit");
  check(c->heartbeat_s >= 0.01, "challenge heartbeat below 10 ms (or NaN)");
  check(c->timeout_s >= 2 * c->heartbeat_s, "challenge timeout below two heartbeats (or NaN)");
}

// A hello read back must write the very bytes it was read from.
bool on_hello(const buffer& payload) {
  auto h = read_hello(payload);
  if (!h) return false;
  check(h->nodes >= 1 && h->nodes <= max_nodes_per_link, "hello node count out of range");
  auto again = write_hello(*h);
  check(again.size() == payload.size() &&
            (again.empty() || std::memcmp(again.data(), payload.data(), again.size()) == 0),
        "a hello read and written again differs from its bytes");
  return true;
}

bool on_fetch(const buffer& payload) {
  reader r{payload};
  auto hash = r.str("bundle hash", 64);
  if (!hash || !r.finish("fetch")) return false;
  check(hash->size() <= 64, "fetch hash over 64 bytes");
  return true;
}

bool inside(const buffer& part, const buffer& whole) {
  if (part.empty()) return true;
  return part.data() >= whole.data() && part.data() + part.size() <= whole.data() + whole.size();
}

void on_reply(const buffer& payload) {
  auto e = read_envelope(payload);
  if (!e) return;  // a malformed reply is logged and dropped; the link stays
  check(e->message_id.size() <= 4096 && e->reply_to.size() <= 4096, "envelope id over 4096 bytes");
  check(inside(e->bytes, payload) && inside(e->content, payload), "envelope blob outside its frame");
  for (auto* b : {&e->bytes, &e->content})
    check(b->empty() || reinterpret_cast<uintptr_t>(b->data()) % 8 == 0, "envelope blob not 8-aligned");
  // Written again, it reads back the same (padding bytes aside).
  auto again = envelope_payload(*e);
  check(again.size() == payload.size(), "an envelope written again has another size");
  auto back = read_envelope(buffer::copy_of(again.data(), again.size()));
  check(back && back->message_id == e->message_id && back->reply_to == e->reply_to &&
            back->node_id == e->node_id && same_deadline_kind(back->deadline, e->deadline) &&
            back->bytes == e->bytes && back->content == e->content,
        "an envelope written and read again differs");

  codec_options opts;
  opts.max_message_size = 1 << 20;
  auto msg = decode(e->bytes, e->content, opts);
  if (!msg) return;
  // As decode_fuzz: what decodes re-encodes, and that encoding is stable.
  auto once = encode(*msg, opts);
  if (!once) return;
  auto again_msg = decode(*once, opts);
  check(again_msg.has_value(), "a re-encoded reply message does not decode");
  auto twice = encode(*again_msg, opts);
  check(twice && *twice == *once, "a reply message's encoding is not stable");
}

enum class role { pending, node };

// A node's limits, as superlink.cpp sets them: a reply's size only while
// it owes one (`owes`); past that, up to a reply's size, read and dropped.
void node_limits(frame_assembler& frames, bool owes) {
  frames.set_max_length(owes ? frame_limit : handshake_limit);
  frames.set_discard_limit(frame_limit);
}

// One frame, as superlink.cpp's on_frame; false drops the connection.
bool on_frame(role& who, frame_assembler& frames, const frame& f, bool owes) {
  if (f.type == frame_type::ping) return true;
  if (f.discarded > 0) {
    check(f.payload.empty(), "a dropped frame kept its payload");
    return who == role::node && f.type == frame_type::reply;
  }
  if (f.type == frame_type::challenge) {
    on_challenge(f.payload);
    return false;
  }
  if (who == role::pending) {
    if (f.type != frame_type::hello || !on_hello(f.payload)) return false;
    who = role::node;
    node_limits(frames, owes);
    return true;
  }
  if (f.type == frame_type::fetch) return on_fetch(f.payload);
  if (f.type == frame_type::reply) {
    on_reply(f.payload);
    return true;
  }
  return false;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  __sanitizer_install_malloc_and_free_hooks(on_malloc, on_free);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const uint8_t mode = data[0];
  const size_t chunk = 1 + (mode & 0x1f);
  const bool owes = (mode & 0x20) != 0;  // a node that owes a reply
  role who = (mode & 0x40) ? role::pending : role::node;
  const bool in_place = (mode & 0x80) != 0;
  frame_assembler frames{handshake_limit, chunk};
  if (who == role::node) node_limits(frames, owes);
  bool dropping = false;  // the payload being read is past the limit, read and dropped
  uint64_t claimed = 0;
  auto* p = reinterpret_cast<const std::byte*>(data + 1);
  size_t left = size - 1;
  size_t reads = 0;
  for (;;) {
    const size_t n = frames.next_read();
    check(n > 0, "next_read() asks for nothing");
    if (n > left) break;  // the peer closed before the read completed
    expected<std::optional<frame>> f = std::optional<frame>{};
    if (!frames.mid_frame()) {
      check(n == header_size, "next_read() between frames is not a header");
      check(!frames.payload_target(), "a payload target between frames");
      std::array<std::byte, header_size> head;
      std::memcpy(head.data(), p, header_size);
      if (head[4] == std::byte{0}) head[4] = std::byte{version};
      const uint64_t limit = frames.max_length();
      const uint64_t accepted = who == role::node ? std::max(limit, frame_limit) : limit;
      auto h = decode_header(head.data(), accepted);
      largest = 0;
      watching = true;
      f = frames.feed(head.data(), n);
      watching = false;
      check(h.has_value() == f.has_value(), "feed and decode_header disagree on a header");
      if (!f) {
        check(f.error().code == h.error().code, "feed and decode_header refuse for other reasons");
        check(!frames.mid_frame() && !frames.payload_target(), "a refused header left a frame open");
        // Only the error's sentence was allocated, never the claimed payload.
        check(largest < 4096, "a refused header allocated memory");
        break;  // the broker drops the connection
      }
      check(h->length <= accepted, "a header over the limit was accepted");
      dropping = h->length > limit;
      claimed = h->length;
      if (dropping) check(largest < 4096, "a payload to be dropped was allocated");
      if (h->length > 0) {
        check(!f->has_value() && frames.mid_frame(), "a header with a payload gave a frame");
        auto t = frames.payload_target();
        if (dropping) check(!t, "a payload to be dropped has a target");
        else check(t && t->left == h->length, "the payload target is not the claimed length");
      } else {
        check(f->has_value() && (*f)->payload.empty() && (*f)->type == h->type, "an empty frame is lost");
      }
    } else if (dropping) {
      check(!frames.payload_target() && n <= chunk, "a dropped payload has a target, or a read past the chunk");
      f = frames.feed(p, n);
      check(f.has_value(), "a dropped payload's read was refused");
      if (*f) check((*f)->discarded == claimed, "a dropped frame does not say how much was dropped");
    } else {
      auto t = frames.payload_target();
      check(t && n <= t->left && n <= chunk, "next_read() past the payload or the chunk");
      if (in_place && reads++ % 2 == 1) {
        std::memcpy(t->at, p, n);
        f = frames.placed(n);
      } else {
        f = frames.feed(p, n);
      }
      check(f.has_value(), "a payload read was refused");
      check(f->has_value() == !frames.mid_frame(), "a frame ended without being handed out");
    }
    p += n;
    left -= n;
    if (*f) dropping = false;
    if (*f && !on_frame(who, frames, **f, owes)) break;
  }
  return 0;
}
