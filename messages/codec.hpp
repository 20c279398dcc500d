#pragma once

#include <cstddef>

#include "messages/buffer.hpp"
#include "messages/expected.hpp"
#include "messages/message.hpp"

namespace stamen {

/// Limits of the codec. Both sides of a connection should agree on them.
struct codec_options {
  /// Largest encoded message accepted by encode and decode. Also sets Cap'n
  /// Proto's traversal limit, which otherwise (64 MiB) rejects real models.
  /// The default fits a 2 GiB model plus its metadata.
  size_t max_message_size = (size_t{2} << 30) + (size_t{64} << 20);

  /// Cap'n Proto's pointer nesting limit; the schema itself needs fewer than 8.
  int nesting_limit = 64;

  /// Arrays are split into Data blobs of this many bytes (a multiple of 8, at
  /// most 2^29 - 8) because one Cap'n Proto blob holds less than 512 MiB.
  size_t chunk_size = size_t{256} << 20;
};

/// Encodes `msg` into one flat, 8-byte-aligned buffer: a Cap'n Proto segment
/// table, then the segments back to back (the first holds all but the arrays
/// of 64 KiB and more, which get one per chunk). Array bytes are copied
/// exactly once.
/// Fails when the result would exceed `opts.max_message_size` or `opts` is invalid.
expected<buffer> encode(const message& msg, const codec_options& opts = {});

/// The bytes `encode` would give, in parts to be sent one after another and
/// never joined: arrays of 64 KiB and more are slices of their own buffers
/// (kept alive by the parts), the rest is small. A reply going out on a
/// socket costs no copy of its arrays this way. Same failures as `encode`.
expected<std::vector<buffer>> encode_parts(const message& msg, const codec_options& opts = {});

/// Decodes a buffer made by `encode` (or a peer). Arrays are slices of `buf`
/// and keep it alive; their bytes are not copied. Any malformed input yields a
/// failure (decode_failed, message_too_large, shape_mismatch, invalid_message)
/// saying what is wrong and where; it never throws or crashes.
expected<message> decode(const buffer& buf, const codec_options& opts = {});

/// Encodes `msg` without its content, for messages that share one content
/// encoded once with encode_content (e.g. the instructions of a round, which
/// all carry the same global model). The two parts travel together.
expected<buffer> encode_header(const message& msg, const codec_options& opts = {});

/// Encodes a RecordDict on its own, as the shared part of encode_header.
expected<buffer> encode_content(const record_dict& content, const codec_options& opts = {});

/// encode_content's bytes in unjoined parts, as encode_parts.
expected<std::vector<buffer>> encode_content_parts(const record_dict& content,
                                                   const codec_options& opts = {});

/// Decodes a header and its separately encoded content (an empty `content`
/// means the header is a whole message). Arrays are slices of `content`.
expected<message> decode(const buffer& header, const buffer& content,
                         const codec_options& opts = {});

}  // namespace stamen
