#include "actors/analytics/result_store.hpp"

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <future>
#include <memory>
#include <stdexcept>

#include <capnp/message.h>
#include <caf/all.hpp>
#include <spdlog/spdlog.h>

#include "actors/analytics/atoms.hpp"
#include "actors/analytics/capnp_text.hpp"
#include "actors/analytics/response_codec.hpp"
#include "protocols/capnp_io.hpp"
#include "protocols/result_page.hpp"
#include "runtime/storage/column_family.hpp"

namespace wharf::actors::analytics_detail {

namespace {

// Writing a whole result (many pages, one batch) and scanning for an earlier run's results
// take longer than a single read.
constexpr std::chrono::seconds result_write_timeout{120};
constexpr std::chrono::seconds store_scan_timeout{60};

// The column family results live in (the module's own; see module.cpp).
runtime::column_ref results() {
  return runtime::column_ref{results_family};
}

} // namespace

using protocols::flat_reader;
using protocols::message_bytes;
using namespace wharf::runtime;
namespace rp = wharf::reports;
using steady = std::chrono::steady_clock;
using protocols::page_view;
using protocols::page_writer;

namespace {

constexpr const char* store_path = "system/store";
constexpr const char* service_path = "services/analytics";

// A stored result: keys "meta" and "page/NNNNNNNN" under this path.
std::string result_path(const std::string& id) {
  return std::string(service_path) + "/results/" + id;
}

std::string page_key(uint64_t page) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "page/%08llu", static_cast<unsigned long long>(page));
  return buf;
}

// The pages a stored result's meta entry counts (0 when unreadable).
uint64_t page_count(const std::string& meta) {
  try {
    flat_reader rd{meta};
    if (rd.ok())
      return (rd.get<rp::ResultPage>().getTotalRows() + result_page_rows - 1) / result_page_rows;
  } catch (const kj::Exception&) {
  }
  return 0;
}

} // namespace

result_store::result_store(caf::event_based_actor* self, caf::actor root,
                           std::chrono::seconds ttl, std::function<bool(const std::string&)> ours)
  : self_(self), root_(std::move(root)), ttl_(ttl), ours_(std::move(ours)) {}

caf::expected<std::map<std::string, std::string>>
result_store::entries(const sorted_partial& total,
                      const std::vector<std::pair<std::string, std::string>>& cols) {
  std::map<std::string, std::string> puts;
  auto rows = total.size();
  std::vector<std::string> types;
  for (auto& c : cols)
    types.push_back(c.second);
  // Pages are independent: a helper thread encodes every other one (the reads are over, a
  // core is free by now).
  auto encode = [&](uint64_t first_page, uint64_t step) {
    std::vector<std::pair<std::string, std::string>> out;
    for (uint64_t from = first_page * result_page_rows; from < rows; from += step * result_page_rows) {
      auto n = std::min<uint64_t>(result_page_rows, rows - from);
      capnp::MallocMessageBuilder mb;
      auto page = mb.initRoot<rp::ResultPage>();
      write_columns(page.initColumns(static_cast<unsigned>(cols.size())), cols);
      page.setOffset(from);
      page.setTotalRows(rows);
      page_writer w{types};
      write_page(w, total, from, n);
      w.write(page);
      out.emplace_back(page_key(from / result_page_rows), message_bytes(mb));
    }
    return out;
  };
  try {
    auto odd = std::async(std::launch::async, encode, 1, 2);
    auto even = encode(0, 2);
    auto rest = odd.get();
    for (auto* part : {&even, &rest})
      for (auto& kv : *part)
        puts.emplace(std::move(kv));
  } catch (const kj::Exception& e) {
    return runtime::make_error(protocols::error_code::internal,
                      std::string("cannot store the result: ") + e.getDescription().cStr());
  } catch (const std::exception& e) {
    return runtime::make_error(protocols::error_code::internal, std::string("cannot store the result: ") + e.what());
  }
  {
    capnp::MallocMessageBuilder mb;
    auto meta = mb.initRoot<rp::ResultPage>();
    meta.setTotalRows(rows);
    write_columns(meta.initColumns(static_cast<unsigned>(cols.size())), cols);
    puts.emplace("meta", message_bytes(mb));
  }
  return puts;
}

void result_store::save(caf::event_based_actor* self, const caf::actor& root,
                        const std::string& id, std::map<std::string, std::string> puts,
                        std::function<void()> saved,
                        std::function<void(const caf::error&)> failed) {
  self->request(root, store_timeout, whereis_atom::value, std::string{store_path})
    .then(
      [self, id, puts = std::move(puts), saved, failed](caf::actor& store) mutable {
        self->request(store, result_write_timeout, persist_atom::value, results(), result_path(id),
                      std::move(puts), std::vector<std::string>{})
          .then([saved](caf::ok_atom) { saved(); },
                [failed](caf::error& err) {
                  failed(runtime::make_error(protocols::error_code::internal,
                                    "cannot store the result: " + describe(err)));
                });
      },
      [failed](caf::error& err) {
        failed(runtime::make_error(protocols::error_code::internal, "no state store: " + describe(err)));
      });
}

void result_store::fetch(rp::FetchRequest::Reader req, std::function<void(std::string)> reply) {
  auto ref = str(req.getRef());
  auto offset = req.getOffset();
  uint64_t limit = req.getLimit() ? std::min(req.getLimit(), result_page_rows) : default_fetch_rows;
  auto fail = [reply](const std::string& code, const std::string& msg) {
    capnp::MallocMessageBuilder mb;
    auto p = mb.initRoot<rp::ResultPage>();
    p.setErrorCode(text(code));
    p.setError(text(msg));
    reply(message_bytes(mb));
  };
  bool plain = !ref.empty() && ref.size() < 128
               && std::all_of(ref.begin(), ref.end(), [](char c) {
                    return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_';
                  });
  if (!plain) {
    fail("INVALID_ARGUMENT", "bad result reference");
    return;
  }
  self_->request(root_, store_timeout, whereis_atom::value, std::string{store_path})
    .then(
      [this, ref, offset, limit, reply, fail](caf::actor& store) {
        self_->request(store, store_timeout, restore_atom::value, results(), result_path(ref),
                       std::string{"meta"})
          .then(
            [this, store, ref, offset, limit, reply, fail](bool found, std::string& meta) {
              if (!found) {
                fail("NOT_FOUND", "no stored result \"" + ref + "\" (unknown or expired)");
                return;
              }
              fetch_pages(store, ref, offset, limit, std::move(meta), reply);
            },
            [fail](caf::error& err) { fail("INTERNAL", describe(err)); });
      },
      [fail](caf::error& err) { fail("INTERNAL", describe(err)); });
}

// Reads the pages covering [offset, offset + limit) one after another, then answers. A
// request for exactly one stored page gets the page as stored (no copy of its rows).
void result_store::fetch_pages(caf::actor store, std::string ref, uint64_t offset,
                               uint64_t limit, std::string meta, std::function<void(std::string)> reply) {
  struct job {
    std::string meta;
    std::vector<std::string> pages;
    uint64_t first_page = 0;
    uint64_t last_page = 0;
  };
  auto j = std::make_shared<job>();
  j->meta = std::move(meta);
  uint64_t total = 0;
  try {
    flat_reader rd{j->meta};
    if (rd.ok())
      total = rd.get<rp::ResultPage>().getTotalRows();
  } catch (const kj::Exception&) {
  }
  auto end = std::min(total, offset + limit);
  bool whole_page = offset % result_page_rows == 0 && (end - offset == result_page_rows || end == total);
  auto answer = [j, offset, end, total, whole_page, reply] {
    if (whole_page && j->pages.size() == 1) {
      reply(std::move(j->pages.front()));
      return;
    }
    capnp::MallocMessageBuilder mb;
    auto out = mb.initRoot<rp::ResultPage>();
    flat_reader mr{j->meta};
    if (!mr.ok())
      throw std::runtime_error("its meta entry is not a Cap'n Proto message");
    out.setColumns(mr.get<rp::ResultPage>().getColumns());
    out.setOffset(offset);
    out.setTotalRows(total);
    std::vector<std::string> types;
    for (auto c : out.getColumns())
      types.emplace_back(c.getType().cStr());
    page_writer w{types};
    for (auto& bytes : j->pages) {
      flat_reader pr{bytes};
      if (!pr.ok())
        throw std::runtime_error("not a Cap'n Proto message");
      auto page = pr.get<rp::ResultPage>();
      page_view v{page};
      if (!v.ok())
        throw std::runtime_error(v.error());
      // The page's rows that fall into [offset, end).
      auto base = page.getOffset();
      auto from = std::max(base, offset) - base;
      auto to = std::min(base + v.rows(), end);
      if (to > base + from && !w.append(v, from, to - base))
        throw std::runtime_error("its columns differ from the result's");
    }
    w.write(out);
    reply(message_bytes(mb));
  };
  if (end <= offset) {
    j->last_page = 0;
    j->first_page = 1; // no page to read: answer at once (through the same checks)
  } else {
    j->first_page = offset / result_page_rows;
    j->last_page = (end - 1) / result_page_rows;
  }
  auto next = std::make_shared<std::function<void(uint64_t)>>();
  *next = [this, store, ref, j, next, answer, reply](uint64_t page) {
    if (page > j->last_page) {
      auto corrupt = [&](const std::string& why) {
        capnp::MallocMessageBuilder mb;
        auto p = mb.initRoot<rp::ResultPage>();
        p.setErrorCode("INTERNAL");
        p.setError(text("stored page is corrupt: " + why));
        reply(message_bytes(mb));
      };
      try {
        answer();
      } catch (const kj::Exception& e) {
        corrupt(e.getDescription().cStr());
      } catch (const std::exception& e) {
        corrupt(e.what());
      }
      *next = nullptr; // break the cycle
      return;
    }
    self_->request(store, store_timeout, restore_atom::value, results(), result_path(ref),
                   page_key(page))
      .then(
        [j, next, page](bool, std::string& bytes) {
          j->pages.push_back(std::move(bytes));
          if (*next)
            (*next)(page + 1);
        },
        [reply, next](caf::error& err) {
          capnp::MallocMessageBuilder mb;
          auto p = mb.initRoot<rp::ResultPage>();
          p.setErrorCode("INTERNAL");
          p.setError(text(describe(err)));
          reply(message_bytes(mb));
          *next = nullptr;
        });
  };
  (*next)(j->first_page);
}

void result_store::adopt_leftovers() {
  if (adoption_ != not_yet)
    return;
  adoption_ = searching;
  auto parent = result_path("");
  self_->request(root_, store_timeout, whereis_atom::value, std::string{store_path})
    .then(
      [this, parent](caf::actor& store) {
        self_->request(store, store_scan_timeout, list_atom::value, results(), parent)
          .then(
            [this, store, parent](std::vector<std::string>& paths) {
              adoption_ = adopted;
              sweep_legacy(store);
              size_t found = 0;
              for (auto& path : paths) {
                auto id = path.substr(parent.size());
                if (ours_(id) || leftovers_.count(id))
                  continue; // stored by this run
                ++found;
                adopt(store, id);
              }
              if (found > 0)
                spdlog::info("analytics: stored results from an earlier run: {} (they expire "
                             "in {} s)",
                             found, ttl_.count());
            },
            [this](caf::error& err) {
              adoption_ = not_yet; // again at the next tick
              spdlog::warn("analytics: cannot list stored results: {}", describe(err));
            });
      },
      [this](caf::error& err) {
        adoption_ = not_yet;
        spdlog::warn("analytics: no state store to list stored results: {}", describe(err));
      });
}

void result_store::sweep_legacy(const caf::actor& store) {
  // Versions before the module boundary stored results in the node's actor state; nothing
  // reads them now, so they go (without this they would stay on disk for good).
  auto parent = result_path("");
  self_->request(store, store_scan_timeout, list_atom::value, parent)
    .then(
      [this, store, parent](std::vector<std::string>& paths) {
        for (auto& path : paths)
          self_->request(store, store_scan_timeout, restore_atom::value, path, std::string{"meta"})
            .then(
              [this, store, path](bool found, std::string& meta) {
                std::vector<std::string> keys{"meta"};
                auto pages = found ? page_count(meta) : 0;
                for (uint64_t p = 0; p < std::max<uint64_t>(pages, 1); ++p)
                  keys.push_back(page_key(p));
                self_->send(store, persist_atom::value, path,
                            std::map<std::string, std::string>{}, std::move(keys));
              },
              [](caf::error&) {});
        if (!paths.empty())
          spdlog::info("analytics: dropping {} results an older version stored", paths.size());
      },
      [](caf::error& err) {
        spdlog::warn("analytics: cannot list results of an older version: {}", describe(err));
      });
}

void result_store::adopt(const caf::actor& store, const std::string& id) {
  self_->request(store, store_scan_timeout, restore_atom::value, results(), result_path(id),
                 std::string{"meta"})
    .then(
      [this, id](bool found, std::string& meta) {
        if (ours_(id))
          return;
        uint64_t pages = found ? page_count(meta) : 0;
        if (pages == 0)
          spdlog::warn("analytics: stored result {} has no readable meta; only its meta "
                       "and first page will be dropped", id);
        leftovers_[id] = {steady::now() + ttl_, std::max<uint64_t>(pages, 1)};
      },
      [id](caf::error& err) {
        spdlog::warn("analytics: cannot read stored result {}: {}", id, describe(err));
      });
}

void result_store::drop_expired(steady::time_point now) {
  for (auto i = leftovers_.begin(); i != leftovers_.end();) {
    if (now > i->second.expires) {
      drop(i->first, i->second.pages);
      i = leftovers_.erase(i);
    } else {
      ++i;
    }
  }
}

void result_store::drop(const std::string& id, uint64_t pages) {
  self_->request(root_, store_timeout, whereis_atom::value, std::string{store_path})
    .then(
      [this, id, pages](caf::actor& store) {
        std::vector<std::string> keys{"meta"};
        for (uint64_t p = 0; p < pages; ++p)
          keys.push_back(page_key(p));
        self_->send(store, persist_atom::value, results(), result_path(id),
                    std::map<std::string, std::string>{}, std::move(keys));
      },
      [](caf::error&) {});
}

} // namespace wharf::actors::analytics_detail
