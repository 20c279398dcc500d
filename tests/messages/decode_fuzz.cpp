// libFuzzer target: decode() must never crash on any input, and whatever it
// accepts must re-encode to bytes that decode to the same encoding again.
#include <cstdlib>
#include <cstring>

#include "messages/codec.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  stamen::codec_options opts;
  opts.max_message_size = 1 << 20;
  auto buf = stamen::buffer::copy_of(data, size);
  auto msg = stamen::decode(buf, opts);
  if (!msg) return 0;
  auto once = stamen::encode(*msg, opts);
  if (!once) return 0;
  auto again = stamen::decode(*once, opts);
  if (!again) std::abort();
  auto twice = stamen::encode(*again, opts);
  if (!twice || !(*twice == *once)) std::abort();
  return 0;
}
