#include "runtime/rpc/feed.hpp"

#include <thread>

#include <boost/test/unit_test.hpp>
#include <kj/async-io.h>

using namespace wharf::runtime;

BOOST_AUTO_TEST_SUITE(feed_suite)

BOOST_AUTO_TEST_CASE(a_full_drop_oldest_feed_keeps_the_newest_items) {
  feed f{3, feed::overflow::drop_oldest};
  for (int i = 0; i < 10; ++i)
    BOOST_TEST(f.push(std::to_string(i)));
  BOOST_TEST(f.size() == 3u);
  BOOST_TEST(f.dropped() == 7u);
  f.close();
  auto io = kj::setupAsyncIo();
  auto& ws = io.waitScope;
  std::vector<std::string> got;
  while (auto x = f.next().wait(ws))
    got.push_back(*x);
  BOOST_TEST((got == std::vector<std::string>{"7", "8", "9"}));
}

BOOST_AUTO_TEST_CASE(a_full_refusing_feed_pushes_back_on_the_producer) {
  feed f{2, feed::overflow::refuse};
  BOOST_TEST(f.push("a"));
  BOOST_TEST(f.push("b"));
  BOOST_TEST(!f.writable());
  BOOST_TEST(!f.push("c"));
  BOOST_TEST(f.dropped() == 1u);
  auto io = kj::setupAsyncIo();
  auto& ws = io.waitScope;
  BOOST_TEST(*f.next().wait(ws) == "a");
  BOOST_TEST(f.writable());
  BOOST_TEST(f.push("c"));
}

BOOST_AUTO_TEST_CASE(a_waiting_loop_wakes_for_an_item_from_another_thread) {
  feed f{4, feed::overflow::refuse};
  auto io = kj::setupAsyncIo();
  auto& ws = io.waitScope;
  auto p = f.next(); // nothing yet: waits
  std::thread producer([&f] {
    f.push("late");
    f.close();
  });
  auto x = p.wait(ws);
  producer.join();
  BOOST_REQUIRE(x.has_value());
  BOOST_TEST(*x == "late");
  BOOST_TEST(!f.next().wait(ws).has_value()); // closed and drained
  BOOST_TEST(!f.push("after close"));
}

BOOST_AUTO_TEST_SUITE_END()
