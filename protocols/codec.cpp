#include "protocols/codec.hpp"

#include <cstring>

#include <capnp/message.h>
#include <capnp/serialize.h>
#include <kj/exception.h>
#include <kj/io.h>

#include <caf/make_message.hpp>

#include "protocols/capnp_convert.hpp"
#include "protocols/cluster.capnp.h"

namespace wharf::protocols {

const char* to_string(member_status x) noexcept {
  switch (x) {
    case member_status::alive: return "alive";
    case member_status::down: return "down";
    case member_status::left: return "left";
  }
  return "unknown";
}

const char* to_string(admin_command x) noexcept {
  switch (x) {
    case admin_command::members: return "members";
    case admin_command::tree: return "tree";
    case admin_command::actors: return "actors";
    case admin_command::stats: return "stats";
    case admin_command::kill: return "kill";
    case admin_command::get: return "get";
    case admin_command::put: return "put";
  }
  return "unknown";
}

const char* to_string(codec_errc x) noexcept {
  switch (x) {
    case codec_errc::none: return "none";
    case codec_errc::too_large: return "too_large";
    case codec_errc::misaligned: return "misaligned";
    case codec_errc::malformed: return "malformed";
    case codec_errc::empty_body: return "empty_body";
  }
  return "unknown";
}

caf::error make_error(codec_errc code, std::string context) {
  return caf::error{static_cast<uint8_t>(code), codec_errc_category,
                    caf::make_message(std::move(context))};
}

admin_reply make_admin_error(std::string code, std::string message) {
  admin_reply r;
  r.error_code = std::move(code);
  r.error = std::move(message);
  return r;
}

namespace {

kj::StringPtr text(const std::string& s) {
  return kj::StringPtr(s.c_str(), s.size());
}

capnp::Data::Reader data(const std::string& s) {
  return capnp::Data::Reader(reinterpret_cast<const kj::byte*>(s.data()), s.size());
}

std::string bytes_of(capnp::Data::Reader d) {
  return std::string(reinterpret_cast<const char*>(d.begin()), d.size());
}

std::string str(capnp::Text::Reader t) {
  return std::string(t.cStr(), t.size());
}

// -- struct -> builder --

void write(wire::Member::Builder b, const member& x) {
  b.setName(text(x.name));
  b.setHost(text(x.host));
  b.setClusterPort(x.cluster_port);
  b.setRpcPort(x.rpc_port);
  b.setHttpPort(x.http_port);
  auto roles = b.initRoles(static_cast<unsigned>(x.roles.size()));
  for (unsigned i = 0; i < roles.size(); ++i)
    roles.set(i, text(x.roles[i]));
  b.setStatus(static_cast<wire::MemberStatus>(x.status));
  b.setIncarnation(x.incarnation);
}

void write(capnp::List<wire::Member>::Builder out, const std::vector<member>& xs) {
  for (unsigned i = 0; i < out.size(); ++i)
    write(out[i], xs[i]);
}

void write(wire::AdminRequest::Builder b, const admin_request& x) {
  b.setCommand(static_cast<wire::AdminCommand>(x.command));
  b.setNode(text(x.node));
  b.setPath(text(x.path));
  b.setKey(text(x.key));
  b.setValue(text(x.value));
}

void write(wire::AdminReply::Builder b, const admin_reply& x) {
  b.setError(text(x.error));
  b.setErrorCode(text(x.error_code));
  write(b.initMembers(static_cast<unsigned>(x.members.size())), x.members);
  auto actors = b.initActors(static_cast<unsigned>(x.actors.size()));
  for (unsigned i = 0; i < actors.size(); ++i) {
    const auto& a = x.actors[i];
    auto e = actors[i];
    e.setPath(text(a.path));
    e.setDepth(a.depth);
    e.setKind(text(a.kind));
    e.setStrategy(text(a.strategy));
    e.setRestartType(text(a.restart_type));
    e.setRestarts(a.restarts);
    e.setStatus(text(a.status));
    e.setActorId(a.actor_id);
    e.setMailboxSize(a.mailbox_size);
  }
  auto stats = b.initStats(static_cast<unsigned>(x.stats.size()));
  for (unsigned i = 0; i < stats.size(); ++i) {
    stats[i].setName(text(x.stats[i].name));
    stats[i].setValue(x.stats[i].value);
  }
  b.setValue(text(x.value));
  b.setFound(x.found);
  b.setNode(text(x.node));
}

// -- reader -> struct --

// Lists longer than this are rejected before anything is allocated for them. Cap'n Proto
// charges a list of zero-sized structs one word per element, so without a cap a 50-byte
// message could make us allocate gigabytes.
template <class List>
void check_length(const List& xs, size_t cap, const char* what) {
  if (xs.size() > cap)
    throw std::invalid_argument(std::string(what) + " list of " + std::to_string(xs.size())
                                + " entries exceeds the limit of " + std::to_string(cap));
}

member read(wire::Member::Reader r) {
  member x;
  x.name = str(r.getName());
  x.host = str(r.getHost());
  x.cluster_port = r.getClusterPort();
  x.rpc_port = r.getRpcPort();
  x.http_port = r.getHttpPort();
  check_length(r.getRoles(), max_roles, "roles");
  for (auto role : r.getRoles())
    x.roles.push_back(str(role));
  auto st = r.getStatus();
  // An enumerant from a newer schema reads as an out-of-range value: treat it as down.
  x.status = static_cast<uint16_t>(st) <= static_cast<uint16_t>(wire::MemberStatus::LEFT)
               ? static_cast<member_status>(st)
               : member_status::down;
  x.incarnation = r.getIncarnation();
  return x;
}

std::vector<member> read(capnp::List<wire::Member>::Reader rs) {
  std::vector<member> xs;
  check_length(rs, max_members, "member");
  xs.reserve(rs.size());
  for (auto r : rs)
    xs.push_back(read(r));
  return xs;
}

admin_request read(wire::AdminRequest::Reader r) {
  admin_request x;
  auto cmd = static_cast<uint16_t>(r.getCommand());
  if (cmd > static_cast<uint16_t>(wire::AdminCommand::PUT))
    throw std::invalid_argument("unknown admin command " + std::to_string(cmd));
  x.command = static_cast<admin_command>(cmd);
  x.node = str(r.getNode());
  x.path = str(r.getPath());
  x.key = str(r.getKey());
  x.value = str(r.getValue());
  return x;
}

admin_reply read(wire::AdminReply::Reader r) {
  admin_reply x;
  x.error = str(r.getError());
  x.error_code = str(r.getErrorCode());
  x.members = read(r.getMembers());
  check_length(r.getActors(), max_actor_entries, "actor");
  for (auto e : r.getActors()) {
    actor_entry a;
    a.path = str(e.getPath());
    a.depth = e.getDepth();
    a.kind = str(e.getKind());
    a.strategy = str(e.getStrategy());
    a.restart_type = str(e.getRestartType());
    a.restarts = e.getRestarts();
    a.status = str(e.getStatus());
    a.actor_id = e.getActorId();
    a.mailbox_size = e.getMailboxSize();
    x.actors.push_back(std::move(a));
  }
  check_length(r.getStats(), max_stats, "stat");
  for (auto s : r.getStats())
    x.stats.push_back(stat{str(s.getName()), s.getValue()});
  x.value = str(r.getValue());
  x.found = r.getFound();
  x.node = str(r.getNode());
  return x;
}

struct body_writer {
  wire::Envelope::Body::Builder b;
  void operator()(const join_msg& x) { write(b.initJoin().initMember(), x.self); }
  void operator()(const member_table& x) {
    write(b.initMembers().initMembers(static_cast<unsigned>(x.members.size())), x.members);
  }
  void operator()(const heartbeat& x) { b.initHeartbeat().setIncarnation(x.incarnation); }
  void operator()(const leave_msg& x) { b.initLeave().setIncarnation(x.incarnation); }
  void operator()(const admin_request& x) { write(b.initAdminRequest(), x); }
  void operator()(const admin_reply& x) { write(b.initAdminReply(), x); }
  void operator()(const bench_echo& x) {
    auto e = b.initBenchEcho();
    e.setSeq(x.seq);
    e.setSentNanos(x.sent_nanos);
    e.setPayload(kj::ArrayPtr<const kj::byte>(
      reinterpret_cast<const kj::byte*>(x.payload.data()), x.payload.size()));
  }
  void operator()(const service_call& x) {
    auto c = b.initServiceCall();
    c.setService(text(x.service));
    c.setPayload(data(x.payload));
  }
  void operator()(const service_reply& x) {
    auto r = b.initServiceReply();
    r.setPayload(data(x.payload));
    r.setError(text(x.error));
    r.setErrorCode(text(x.error_code));
  }
};

} // namespace

namespace {

// First-segment size: big enough that typical envelopes fit one segment (no second
// allocation), small enough that the builder does not zero kilobytes it never uses.
unsigned estimate_words(const envelope& x) {
  size_t bytes = 128 + x.from.size();
  if (auto* e = std::get_if<bench_echo>(&x.body))
    bytes += e->payload.size();
  else if (auto* c = std::get_if<service_call>(&x.body))
    bytes += c->service.size() + c->payload.size();
  else if (auto* r = std::get_if<service_reply>(&x.body))
    bytes += r->payload.size() + r->error.size() + r->error_code.size();
  else if (auto* t = std::get_if<member_table>(&x.body))
    bytes += t->members.size() * 160;
  else if (auto* r = std::get_if<admin_reply>(&x.body))
    bytes += (r->members.size() + r->actors.size()) * 160 + r->stats.size() * 48 + r->value.size();
  else if (auto* q = std::get_if<admin_request>(&x.body))
    bytes += q->key.size() + q->value.size() + q->path.size();
  return static_cast<unsigned>(bytes / sizeof(capnp::word) + 8);
}

} // namespace

void build(capnp::MessageBuilder& mb, const envelope& x) {
  auto root = mb.initRoot<wire::Envelope>();
  root.setTraceId(x.trace_id);
  root.setFrom(text(x.from));
  std::visit(body_writer{root.initBody()}, x.body);
}

std::string encode(const envelope& x) {
  // Fast path: build the message in place inside the string we return, behind room for the
  // one-segment header. One allocation, and the payload is copied exactly once.
  auto estimate = estimate_words(x) + estimate_words(x) / 4 + 16;
  std::string out((estimate + 1) * sizeof(capnp::word), '\0');
  if (reinterpret_cast<uintptr_t>(out.data()) % alignof(capnp::word) == 0) {
    try {
      auto* first = reinterpret_cast<capnp::word*>(out.data()) + 1;
      capnp::FlatMessageBuilder fb(kj::arrayPtr(first, estimate));
      build(fb, x);
      auto segments = fb.getSegmentsForOutput();
      if (segments.size() == 1) {
        // Stream framing: (segment count - 1, segment size in words), little-endian.
        uint32_t header[2] = {0, static_cast<uint32_t>(segments[0].size())};
        std::memcpy(out.data(), header, sizeof(header));
        out.resize((segments[0].size() + 1) * sizeof(capnp::word));
        return out;
      }
    } catch (const kj::Exception&) {
      // The estimate was too small (FlatMessageBuilder cannot grow): take the general path.
    }
  }
  capnp::MallocMessageBuilder mb(estimate_words(x));
  build(mb, x);
  auto segments = mb.getSegmentsForOutput();
  out.assign(capnp::computeSerializedSizeInWords(segments) * sizeof(capnp::word), '\0');
  kj::ArrayOutputStream os(kj::arrayPtr(reinterpret_cast<kj::byte*>(out.data()), out.size()));
  capnp::writeMessage(os, segments);
  return out;
}

caf::expected<envelope> decode(std::string_view bytes, const decode_limits& limits) {
  if (bytes.size() > limits.max_bytes)
    return make_error(codec_errc::too_large, std::to_string(bytes.size()) + " bytes");
  if (bytes.empty() || bytes.size() % sizeof(capnp::word) != 0)
    return make_error(codec_errc::misaligned,
                      std::to_string(bytes.size()) + " bytes is not a whole number of words");
  // Cap'n Proto requires word-aligned input. Heap strings are aligned in practice; copy only
  // when this one is not (e.g. a view into the middle of a buffer).
  kj::Array<capnp::word> copy;
  kj::ArrayPtr<const capnp::word> words;
  auto count = bytes.size() / sizeof(capnp::word);
  if (reinterpret_cast<uintptr_t>(bytes.data()) % alignof(capnp::word) == 0) {
    words = kj::arrayPtr(reinterpret_cast<const capnp::word*>(bytes.data()), count);
  } else {
    copy = kj::heapArray<capnp::word>(count);
    std::memcpy(copy.begin(), bytes.data(), bytes.size());
    words = copy;
  }
  capnp::ReaderOptions opts;
  // An honest reader visits each word about once; bound the traversal by the message size
  // too, so amplification (many reads of little data) is cut off early.
  opts.traversalLimitInWords = std::min<uint64_t>(limits.traversal_limit_words,
                                                  4 * count + 64);
  opts.nestingLimit = limits.nesting_limit;
  try {
    capnp::FlatArrayMessageReader rd(words, opts);
    auto root = rd.getRoot<wire::Envelope>();
    envelope x;
    x.trace_id = root.getTraceId();
    x.from = str(root.getFrom());
    auto body = root.getBody();
    switch (body.which()) {
      case wire::Envelope::Body::JOIN:
        x.body = join_msg{read(body.getJoin().getMember())};
        break;
      case wire::Envelope::Body::MEMBERS:
        x.body = member_table{read(body.getMembers().getMembers())};
        break;
      case wire::Envelope::Body::HEARTBEAT:
        x.body = heartbeat{body.getHeartbeat().getIncarnation()};
        break;
      case wire::Envelope::Body::LEAVE:
        x.body = leave_msg{body.getLeave().getIncarnation()};
        break;
      case wire::Envelope::Body::ADMIN_REQUEST:
        x.body = read(body.getAdminRequest());
        break;
      case wire::Envelope::Body::ADMIN_REPLY:
        x.body = read(body.getAdminReply());
        break;
      case wire::Envelope::Body::BENCH_ECHO: {
        auto e = body.getBenchEcho();
        auto p = e.getPayload();
        x.body = bench_echo{e.getSeq(), e.getSentNanos(),
                            std::string(reinterpret_cast<const char*>(p.begin()), p.size())};
        break;
      }
      case wire::Envelope::Body::SERVICE_CALL: {
        auto c = body.getServiceCall();
        x.body = service_call{str(c.getService()), bytes_of(c.getPayload())};
        break;
      }
      case wire::Envelope::Body::SERVICE_REPLY: {
        auto r = body.getServiceReply();
        x.body = service_reply{bytes_of(r.getPayload()), str(r.getError()),
                               str(r.getErrorCode())};
        break;
      }
      default:
        return make_error(codec_errc::empty_body,
                          "unknown envelope body " + std::to_string(body.which()));
    }
    return x;
  } catch (const kj::Exception& e) {
    return make_error(codec_errc::malformed, e.getDescription().cStr());
  } catch (const std::exception& e) {
    return make_error(codec_errc::malformed, e.what());
  }
}

} // namespace wharf::protocols

namespace wharf::protocols {

void write_admin_reply(wire::AdminReply::Builder out, const admin_reply& x) {
  write(out, x);
}

admin_reply read_admin_reply(wire::AdminReply::Reader in) {
  return read(in);
}

} // namespace wharf::protocols
