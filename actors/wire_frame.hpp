#pragma once

// The cluster's wire protocol, below the actors: length-prefixed frames whose
// payloads carry the same Cap'n Proto bytes that travel between actors of one
// process. No CAF here, so that it is tested on its own and so that a frame's
// size is checked before anything is allocated for it.

#include <array>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <vector>

#include "actors/envelope.hpp"
#include "messages/buffer.hpp"
#include "messages/expected.hpp"

namespace stamen::wire {

/// "STMN" read as a little-endian u32: the first bytes of every frame, so that
/// a peer speaking another protocol is refused at its first frame.
inline constexpr uint32_t magic = 0x4e4d5453;
/// 2: a hello says how many SuperNodes its link carries, an accept grants
/// them as a block, and a submit names the nodes a run waits for.
/// 3: a submit carries the submitter's signature of its bundle, and a run
/// frame passes it on with the submitter's certificate.
inline constexpr uint8_t version = 3;
inline constexpr size_t header_size = 16;

/// Who sends what (L: superlink, N: supernode, C: `stamen run`).
enum class frame_type : uint8_t {
  challenge = 1,  ///< L→N/C on connect: nonce and heartbeat settings
  hello = 2,      ///< N→L: claimed id, node config, certificate, signature, node count
  accept = 3,     ///< L→N: the first node id granted (the link's nodes have the next ones)
  refuse = 4,     ///< L→N/C: why, before the link closes the connection
  run = 5,        ///< L→N: a run starts (id, app library, run config, bundle hash)
  instruct = 6,   ///< L→N: an envelope
  reply = 7,      ///< N→L: an envelope
  ping = 8,       ///< either way: liveness when there is nothing else to send
  submit = 9,     ///< C→L: run this app (bundle hash) with this run config
  log = 10,       ///< L→C: one log line of the run
  result = 11,    ///< L→C: the run's JSON result, or its error
  fetch = 12,     ///< L→C, N→L: send me the bundle with this hash
  bundle = 13,    ///< C→L, L→N: a bundle's hash and bytes
  accepted = 14,  ///< L→C: the submitted run's id
  control = 15,   ///< C→L: ls, log, stop or pull, for a run id
  artifact = 16,  ///< L→C: one file of a run's directory (pull)
  run_end = 17,   ///< L→N: a run ended; drop what is left of it
  progress = 18,  ///< L→C: the run's live status line (round, phase, replies), "" when it ends
};

/// The last frame type (what decode_header accepts up to).
inline constexpr frame_type last_frame_type = frame_type::progress;

/// A frame's type name, for error messages.
const char* to_string(frame_type t);

struct frame_header {
  frame_type type;
  uint64_t length;  ///< payload bytes after the header
};

/// The 16 header bytes: magic, version, type, two reserved zero bytes, length.
std::array<std::byte, header_size> encode_header(frame_type type, uint64_t length);

/// Checks a header before its payload is read: magic, version, a known type,
/// reserved bytes zero and a length of at most `max_length`.
expected<frame_header> decode_header(const std::byte* bytes, uint64_t max_length);

/// Builds a payload. Blobs start at 8-byte offsets so that a receiver can
/// decode them in place (Cap'n Proto reads words).
class writer {
 public:
  void u8(uint8_t x);
  void u64(uint64_t x);
  void f64(double x);
  void str(const std::string& x);
  /// A blob: its length, padding to 8 bytes, then the bytes.
  void blob(const std::byte* data, size_t size);
  void blob(const buffer& b) { blob(b.data(), b.size()); }

  const std::vector<std::byte>& bytes() const { return out_; }
  std::vector<std::byte>& bytes() { return out_; }

 private:
  void raw(const void* data, size_t size);
  std::vector<std::byte> out_;
};

/// Reads a payload that lives in a buffer (8-aligned); blobs come out as
/// slices of it. Every read is bounds-checked and names the field.
class reader {
 public:
  explicit reader(buffer payload) : buf_(std::move(payload)) {}
  expected<uint8_t> u8(const char* field);
  expected<uint64_t> u64(const char* field);
  expected<double> f64(const char* field);
  expected<std::string> str(const char* field, size_t max_size = 1 << 20);
  expected<buffer> blob(const char* field);
  /// Fails unless every byte was read (a frame with trailing bytes is malformed).
  expected<void> finish(const char* what) const;

 private:
  expected<void> need(size_t n, const char* field) const;
  buffer buf_;
  size_t pos_ = 0;
};

/// An envelope's payload (instruct and reply frames): message id, reply-to,
/// node id, the seconds its deadline has left (0: none, -1: passed), then the
/// message bytes and the shared content as blobs. Reading sets the deadline
/// against this host's steady clock: no two hosts' clocks are compared.
std::vector<std::byte> envelope_payload(const envelope& e);
/// Reads an envelope; its bytes and content are slices of `payload`.
expected<envelope> read_envelope(const buffer& payload);

/// Appends a whole frame (header + payload) for an envelope to `out` with one
/// copy of each blob, without building the payload apart first.
void append_envelope_frame(std::vector<char>& out, frame_type type, const envelope& e);

/// The frames waiting to be written to one connection. Small parts are
/// copied when queued; an envelope's blobs are held by reference and copied
/// into the socket's buffer a piece at a time, as earlier pieces drain. So a
/// 1 GB model never sits twice in memory, and the broker copying it never
/// stops answering its other peers for longer than one piece takes.
class outbox {
 public:
  void push(frame_type type, const std::vector<std::byte>& payload);
  void push_envelope(frame_type type, const envelope& e);

  /// Moves up to `budget` bytes from the front of the queue to `out`
  /// (appended); returns how many.
  size_t fill(std::vector<char>& out, size_t budget);

  bool empty() const { return parts_.empty(); }
  /// Bytes queued and not yet moved out.
  uint64_t queued() const { return queued_; }

 private:
  struct part {
    std::vector<char> bytes;  ///< owned small bytes, or
    buffer blob;              ///< a blob held by reference
    size_t offset = 0;        ///< how much of it has been moved out
    size_t size() const { return blob.empty() ? bytes.size() : blob.size(); }
  };
  void push_bytes(std::vector<char> bytes);
  std::deque<part> parts_;
  uint64_t queued_ = 0;
};

/// Appends a frame with an already built payload.
void append_frame(std::vector<char>& out, frame_type type, const std::vector<std::byte>& payload);

/// A complete frame.
struct frame {
  frame_type type;
  buffer payload;  ///< 8-aligned, so blobs decode in place
  /// Nonzero: a payload of this many bytes was read and dropped unkept
  /// (see frame_assembler::set_discard_limit); `payload` is empty.
  uint64_t discarded = 0;
};

/// Reassembles frames from a byte stream read in exact pieces: first a
/// header, then the payload in chunks of at most `chunk` bytes. The header is
/// checked before the payload's buffer exists, so a forged length costs
/// nothing; chunked reads keep the socket's own buffer small and let the
/// owner see progress on a large frame (a peer sending 1 GB is not silent).
class frame_assembler {
 public:
  frame_assembler(uint64_t max_length, size_t chunk = size_t{1} << 20)
      : max_length_(max_length), chunk_(chunk) {}

  /// The limit for frames whose header is read from now on.
  void set_max_length(uint64_t n) { max_length_ = n; }
  uint64_t max_length() const { return max_length_; }

  /// Frames longer than max_length() but at most `n` bytes are not refused:
  /// their payload is read and dropped as it comes, nothing allocated for
  /// it, and the frame comes out empty with `discarded` set. For a peer
  /// that may send large frames only at times (a node's reply when it owes
  /// one): a late one costs its bytes, never memory, and not the link.
  void set_discard_limit(uint64_t n) { discard_limit_ = n; }

  /// How many bytes the next read must deliver.
  size_t next_read() const;

  /// Consumes the `n == next_read()` bytes just read. Returns a frame when
  /// one is complete; fails on a bad header (the stream is then unusable).
  expected<std::optional<frame>> feed(const std::byte* data, size_t n);

  /// True while a payload is partly read.
  bool mid_frame() const { return in_payload_; }

  /// Where the rest of the payload being read goes, for a reader that can
  /// put bytes there itself (a TLS session decrypts into it, saving a copy
  /// of the whole payload); `owner` keeps that memory alive. None between
  /// payloads.
  struct target {
    buffer owner;
    std::byte* at;
    size_t left;
  };
  std::optional<target> payload_target() const;

  /// Like feed, for `n == next_read()` payload bytes a reader already put at
  /// payload_target().
  expected<std::optional<frame>> placed(size_t n);

 private:
  expected<std::optional<frame>> advance(size_t n);

  uint64_t max_length_;
  size_t chunk_;
  uint64_t discard_limit_ = 0;
  bool in_payload_ = false;
  bool discarding_ = false;
  frame_type type_ = frame_type::ping;
  uint64_t length_ = 0;
  uint64_t got_ = 0;
  buffer payload_;
  std::byte* fill_ = nullptr;
};

}  // namespace stamen::wire
