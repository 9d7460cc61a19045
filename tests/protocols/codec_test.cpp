#include "protocols/codec.hpp"

#include <cstring>
#include <random>

#include <caf/message.hpp>

#include <boost/test/unit_test.hpp>

using namespace wharf::protocols;

namespace {

member sample_member(const std::string& name) {
  member m;
  m.name = name;
  m.host = "127.0.0.1";
  m.cluster_port = 7100;
  m.rpc_port = 7101;
  m.http_port = 7102;
  m.roles = {"worker", "gateway"};
  m.status = member_status::down;
  m.incarnation = 1763761234567;
  return m;
}

envelope wrap(envelope_body body) {
  envelope e;
  e.trace_id = 42;
  e.from = "n1";
  e.body = std::move(body);
  return e;
}

std::vector<envelope> every_message() {
  admin_reply reply;
  reply.error = "node n3 is down";
  reply.error_code = "peer_down";
  reply.members = {sample_member("n1"), sample_member("n2")};
  reply.actors = {{"system/cluster", 2, "worker", "", "permanent", 3, "running", 17, 4}};
  reply.stats = {{"messages_in_total", 12}, {"ratio", 0.25}};
  reply.value = "v";
  reply.found = true;
  reply.node = "n2";
  return {
    wrap(join_msg{sample_member("n9")}),
    wrap(member_table{{sample_member("a"), sample_member("b"), sample_member("c")}}),
    wrap(heartbeat{77}),
    wrap(leave_msg{78}),
    wrap(admin_request{admin_command::put, "n2", "services/register", "k", "value with spaces"}),
    wrap(reply),
    wrap(bench_echo{5, -9, std::string("\0binary\xff", 8)}),
  };
}

} // namespace

BOOST_AUTO_TEST_SUITE(codec)

BOOST_AUTO_TEST_CASE(every_message_round_trips) {
  for (auto& in : every_message()) {
    auto bytes = encode(in);
    BOOST_TEST(bytes.size() % 8 == 0u);
    auto out = decode(bytes);
    BOOST_REQUIRE_MESSAGE(out, "decode failed for body index " << in.body.index());
    BOOST_TEST((*out == in), "round trip changed body index " << in.body.index());
  }
}

BOOST_AUTO_TEST_CASE(unaligned_input_is_decoded_through_a_copy) {
  auto in = every_message()[6];
  std::string shifted = " " + encode(in);
  auto view = std::string_view(shifted).substr(1); // odd address
  auto out = decode(view);
  BOOST_REQUIRE(out);
  BOOST_TEST((*out == in));
}

BOOST_AUTO_TEST_CASE(large_payloads_round_trip) {
  auto in = wrap(bench_echo{1, 2, std::string(1 << 20, 'x')});
  auto out = decode(encode(in));
  BOOST_REQUIRE(out);
  BOOST_TEST((*out == in));
}

BOOST_AUTO_TEST_CASE(in_place_and_general_encodings_agree_with_capnp_framing) {
  // A table far larger than the size estimate takes the general path; both must decode.
  member_table big;
  for (int i = 0; i < 300; ++i) {
    auto m = sample_member("node-" + std::to_string(i));
    m.roles.assign(20, std::string(40, 'r'));
    big.members.push_back(m);
  }
  for (auto& in : {wrap(heartbeat{3}), wrap(bench_echo{1, 2, std::string(4096, 'p')})}) {
    auto bytes = encode(in);
    uint32_t header[2];
    std::memcpy(header, bytes.data(), sizeof(header));
    BOOST_TEST(header[0] == 0u); // one segment
    BOOST_TEST(bytes.size() == 8u + 8u * header[1]); // and nothing after it
  }
  for (auto& in : {wrap(heartbeat{3}), wrap(big)}) {
    auto bytes = encode(in);
    auto out = decode(bytes);
    BOOST_REQUIRE(out);
    BOOST_TEST((*out == in));
  }
}

BOOST_AUTO_TEST_CASE(empty_input_is_rejected) {
  auto out = decode(std::string{});
  BOOST_REQUIRE(!out);
  BOOST_TEST(out.error().code() == static_cast<uint8_t>(codec_errc::misaligned));
}

BOOST_AUTO_TEST_CASE(every_truncation_is_rejected_without_crashing) {
  auto bytes = encode(every_message()[1]);
  size_t rejected = 0;
  for (size_t n = 0; n < bytes.size(); ++n) {
    auto out = decode(std::string_view(bytes.data(), n));
    if (!out)
      ++rejected;
  }
  // Cutting off whole segments always fails; word-aligned cuts inside one must also fail.
  BOOST_TEST(rejected == bytes.size());
}

BOOST_AUTO_TEST_CASE(random_garbage_is_rejected_or_decoded_but_never_crashes) {
  std::mt19937_64 rng{20261121};
  size_t rejected = 0;
  for (int i = 0; i < 2000; ++i) {
    std::string junk(8 * (1 + rng() % 64), '\0');
    for (auto& c : junk)
      c = static_cast<char>(rng());
    auto out = decode(junk);
    if (!out)
      ++rejected;
  }
  BOOST_TEST(rejected > 1900u); // almost all random words are not a valid message
}

BOOST_AUTO_TEST_CASE(bit_flips_never_crash) {
  // Every flipped copy decodes to a value or to a codec error, never a crash; a value
  // re-encodes to itself (the decoder made a consistent envelope of whatever it read).
  for (auto& msg : every_message()) {
    auto bytes = encode(msg);
    size_t values = 0, errors = 0;
    for (size_t i = 0; i < bytes.size(); ++i) {
      auto copy = bytes;
      copy[i] = static_cast<char>(copy[i] ^ 0x5a);
      auto out = decode(copy);
      if (out) {
        ++values;
        auto again = decode(encode(*out));
        BOOST_REQUIRE_MESSAGE(again, "byte " << i << ": a decoded value does not re-encode");
        // Bytes, not values: a flipped float may be a NaN, which equals nothing.
        BOOST_TEST(encode(*again) == encode(*out), "byte " << i << ": it changed on a round trip");
      } else {
        ++errors;
        BOOST_TEST(out.error().category() == codec_errc_category, "byte " << i);
      }
    }
    BOOST_TEST(values + errors == bytes.size());
    BOOST_TEST(errors > 0u, "no flip of " << bytes.size() << " bytes was detected");
  }
}

BOOST_AUTO_TEST_CASE(traversal_limit_rejects_oversized_messages) {
  member_table big;
  for (int i = 0; i < 1000; ++i)
    big.members.push_back(sample_member("node-" + std::to_string(i)));
  auto bytes = encode(wrap(big));
  decode_limits tight;
  tight.traversal_limit_words = 256;
  auto out = decode(bytes, tight);
  BOOST_REQUIRE(!out);
  BOOST_TEST(out.error().code() == static_cast<uint8_t>(codec_errc::malformed));
  BOOST_TEST(caf::to_string(out.error().context()).find("traversal limit") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(over_long_lists_are_rejected) {
  member_table big;
  big.members.assign(max_members + 1, sample_member("x"));
  auto out = decode(encode(wrap(big)));
  BOOST_REQUIRE(!out);
  BOOST_TEST(caf::to_string(out.error().context()).find("exceeds the limit") != std::string::npos);
  big.members.resize(max_members);
  BOOST_TEST(static_cast<bool>(decode(encode(wrap(big)))));
}

BOOST_AUTO_TEST_CASE(a_tiny_message_cannot_claim_a_huge_list) {
  // Encode a one-member table, then rewrite the list's tag word to claim 2^23 zero-size
  // members: a valid Cap'n Proto message of ~100 bytes that, decoded naively, allocates
  // 8 million rows. It must be refused.
  auto bytes = encode(wrap(member_table{{sample_member("m")}}));
  // Member has 2 data words and 3 pointers; the tag's offset field holds the element count.
  uint64_t tag = (uint64_t{1} << 2) | (uint64_t{2} << 32) | (uint64_t{3} << 48);
  uint64_t evil = uint64_t{1} << 25; // (2^23 elements) << 2, zero data and pointer words
  bool patched = false;
  for (size_t i = 0; i + 8 <= bytes.size(); i += 8) {
    uint64_t w;
    std::memcpy(&w, bytes.data() + i, 8);
    if (w == tag) {
      std::memcpy(bytes.data() + i, &evil, 8);
      patched = true;
    }
  }
  BOOST_REQUIRE(patched);
  auto out = decode(bytes);
  BOOST_REQUIRE(!out);
  BOOST_TEST(out.error().code() == static_cast<uint8_t>(codec_errc::malformed));
}

BOOST_AUTO_TEST_CASE(size_limit_rejects_before_parsing) {
  auto bytes = encode(wrap(heartbeat{1}));
  decode_limits tiny;
  tiny.max_bytes = 8;
  auto out = decode(bytes, tiny);
  BOOST_REQUIRE(!out);
  BOOST_TEST(out.error().code() == static_cast<uint8_t>(codec_errc::too_large));
}

BOOST_AUTO_TEST_CASE(deep_nesting_is_bounded) {
  auto bytes = encode(every_message()[5]);
  decode_limits shallow;
  shallow.nesting_limit = 1;
  auto out = decode(bytes, shallow);
  BOOST_REQUIRE(!out);
  BOOST_TEST(out.error().code() == static_cast<uint8_t>(codec_errc::malformed));
}

BOOST_AUTO_TEST_SUITE_END()
