#include "runtime/secagg/secagg_crypto.hpp"

#include <boost/test/unit_test.hpp>

using namespace stamen;
using namespace stamen::secagg;

BOOST_AUTO_TEST_SUITE(secagg_crypto)

BOOST_AUTO_TEST_CASE(both_ends_of_a_pair_agree_and_labels_separate_keys) {
  auto a = generate_key_pair(), b = generate_key_pair();
  BOOST_REQUIRE(a);
  BOOST_REQUIRE(b);
  auto ab = agree(a->private_key, b->public_key, "mask");
  auto ba = agree(b->private_key, a->public_key, "mask");
  auto other = agree(a->private_key, b->public_key, "share");
  BOOST_REQUIRE(ab);
  BOOST_REQUIRE(ba);
  BOOST_REQUIRE(other);
  BOOST_TEST((*ab == *ba));
  BOOST_TEST((*ab != *other));
  auto pk = public_key_of(a->private_key);
  BOOST_REQUIRE(pk);
  BOOST_TEST((*pk == a->public_key));
  // A low-order point (all zeros) yields an all-zero secret: refused.
  BOOST_TEST(!agree(a->private_key, bytes(32, 0), "mask"));
  BOOST_TEST(!agree(a->private_key, bytes(31, 1), "mask"));
}

BOOST_AUTO_TEST_CASE(sealed_shares_open_only_unaltered_under_their_key_and_aad) {
  key32 k{};
  k[0] = 7;
  bytes msg{1, 2, 3, 4, 5}, aad{9, 9};
  auto box = seal(k, msg, aad);
  BOOST_REQUIRE(box);
  BOOST_TEST(box->size() == 12u + msg.size() + 16u);
  auto back = open(k, *box, aad);
  BOOST_REQUIRE(back);
  BOOST_TEST((*back == msg));
  auto flipped = *box;
  flipped[13] ^= 1;
  BOOST_TEST(!open(k, flipped, aad));
  BOOST_TEST(!open(k, *box, bytes{9, 8}));
  key32 k2 = k;
  k2[1] = 1;
  BOOST_TEST(!open(k2, *box, aad));
  BOOST_TEST(!open(k, bytes(10), aad));
  // Two seals of one message differ (fresh nonces).
  BOOST_TEST((*seal(k, msg, aad) != *box));
}

// RFC 8439, appendix A.1, test vector 1: key and nonce of zeros, counter 0.
BOOST_AUTO_TEST_CASE(the_mask_stream_is_chacha20s_keystream) {
  key32 zero{};
  auto st = mask_stream::make(zero);
  BOOST_REQUIRE(st);
  uint32_t w[4];
  st->next32(w, 4, 32);
  BOOST_TEST(w[0] == 0xade0b876u);
  BOOST_TEST(w[1] == 0x903df1a0u);
  BOOST_TEST(w[2] == 0xe56a5d40u);
  BOOST_TEST(w[3] == 0x28bd8653u);
  // The same seed gives the same stream; bits are masked.
  auto again = mask_stream::make(zero);
  uint64_t x[2];
  again->next64(x, 2, 20);
  BOOST_TEST(x[0] == (0x903df1a0ade0b876ull & 0xfffffu));
}

BOOST_AUTO_TEST_SUITE_END()
