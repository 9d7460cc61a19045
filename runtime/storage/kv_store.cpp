#include "runtime/storage/kv_store.hpp"

#include <rocksdb/db.h>
#include <rocksdb/options.h>
#include <rocksdb/write_batch.h>

#include "runtime/core/types.hpp"

namespace wharf::runtime {

namespace {

caf::error fail(const rocksdb::Status& st, const std::string& what) {
  return make_error(runtime_errc::storage_failure, what + ": " + st.ToString());
}

} // namespace

struct kv_store::impl {
  std::string dir;
  std::unique_ptr<rocksdb::DB> db;
  // [default, actor_state, meta, the modules' families..., undeclared leftovers...]
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  std::vector<std::string> families; // the modules' names, column 2 + i

  rocksdb::ColumnFamilyHandle* cf(column c) const {
    return handles[static_cast<size_t>(c) + 1];
  }

  ~impl() {
    for (auto* h : handles) {
      auto st = db->DestroyColumnFamilyHandle(h);
      (void) st; // deliberate ignore: nothing to do about it while closing
    }
    if (db) {
      auto st = db->Close();
      (void) st; // deliberate ignore: Close only returns already-logged background errors
    }
  }
};

kv_store::kv_store(std::unique_ptr<impl> p) : impl_(std::move(p)) {}

kv_store::~kv_store() = default;

caf::expected<std::unique_ptr<kv_store>>
kv_store::open(const std::string& dir, const std::vector<column_family_spec>& families) {
  rocksdb::DBOptions opts;
  opts.create_if_missing = true;
  opts.create_missing_column_families = true;
  // Small footprint: an idle node must stay well under 64 MiB RSS.
  opts.max_background_jobs = 2;
  opts.keep_log_file_num = 3;
  rocksdb::ColumnFamilyOptions cfo;
  cfo.write_buffer_size = 4 << 20;
  // Actor state also holds large values (stored results, pages of megabytes): those
  // go to blob files, written once at flush and never rewritten by compaction or
  // re-compressed.
  auto state_cfo = cfo;
  state_cfo.enable_blob_files = true;
  state_cfo.min_blob_size = 64 << 10;
  state_cfo.blob_compression_type = rocksdb::kNoCompression;
  state_cfo.enable_blob_garbage_collection = true;
  std::vector<rocksdb::ColumnFamilyDescriptor> cfs = {
    {rocksdb::kDefaultColumnFamilyName, cfo}, {"actor_state", state_cfo}, {"meta", cfo}};
  auto p = std::make_unique<impl>();
  p->dir = dir;
  auto taken = [&](const std::string& name) {
    for (auto& d : cfs)
      if (d.name == name)
        return true;
    return false;
  };
  for (auto& f : families) {
    if (taken(f.name))
      return make_error(runtime_errc::storage_failure,
                        "column family \"" + f.name + "\" is declared twice");
    cfs.emplace_back(f.name, f.large_values ? state_cfo : cfo);
    p->families.push_back(f.name);
  }
  if (cfs.size() > 250)
    return make_error(runtime_errc::storage_failure, "too many column families");
  // RocksDB refuses to open a database without naming every family it holds.
  std::vector<std::string> existing;
  auto listed = rocksdb::DB::ListColumnFamilies(opts, dir, &existing);
  if (listed.ok()) {
    for (auto& name : existing)
      if (!taken(name))
        cfs.emplace_back(name, cfo);
  } // else: a new database (IsIOError / not found): nothing to list
  rocksdb::DB* raw = nullptr;
  auto st = rocksdb::DB::Open(opts, dir, cfs, &p->handles, &raw);
  if (!st.ok())
    return fail(st, "cannot open RocksDB at " + dir);
  p->db.reset(raw);
  return std::unique_ptr<kv_store>(new kv_store(std::move(p)));
}

caf::error kv_store::write(const write_batch& batch, bool sync) {
  rocksdb::WriteBatch wb;
  for (auto& op : batch.ops) {
    auto st = op.value ? wb.Put(impl_->cf(op.cf), op.key, *op.value)
                       : wb.Delete(impl_->cf(op.cf), op.key);
    if (!st.ok())
      return fail(st, "cannot build write batch");
  }
  rocksdb::WriteOptions wo;
  wo.sync = sync;
  auto st = impl_->db->Write(wo, &wb);
  if (!st.ok())
    return fail(st, "write failed");
  return caf::none;
}

caf::expected<std::optional<std::string>> kv_store::get(column cf, const std::string& key) {
  std::string value;
  auto st = impl_->db->Get(rocksdb::ReadOptions{}, impl_->cf(cf), key, &value);
  if (st.IsNotFound())
    return std::optional<std::string>{};
  if (!st.ok())
    return fail(st, "read failed");
  return std::optional<std::string>{std::move(value)};
}

caf::expected<std::map<std::string, std::string>> kv_store::scan(column cf,
                                                                 const std::string& prefix) {
  std::map<std::string, std::string> out;
  std::unique_ptr<rocksdb::Iterator> it{impl_->db->NewIterator(rocksdb::ReadOptions{},
                                                               impl_->cf(cf))};
  for (it->Seek(prefix); it->Valid(); it->Next()) {
    auto k = it->key();
    if (!k.starts_with(prefix))
      break;
    out.emplace(std::string(k.data() + prefix.size(), k.size() - prefix.size()),
                it->value().ToString());
  }
  if (!it->status().ok())
    return fail(it->status(), "scan failed");
  return out;
}

caf::expected<std::vector<std::string>> kv_store::paths_under(column cf,
                                                              const std::string& parent,
                                                              size_t limit) {
  std::vector<std::string> out;
  std::unique_ptr<rocksdb::Iterator> it{impl_->db->NewIterator(rocksdb::ReadOptions{},
                                                               impl_->cf(cf))};
  it->Seek(parent);
  while (it->Valid() && out.size() < limit) {
    auto k = it->key();
    if (!k.starts_with(parent))
      break;
    std::string_view key{k.data(), k.size()};
    auto end = key.find('\0', parent.size());
    if (end == std::string_view::npos) { // not a state key
      it->Next();
      continue;
    }
    out.emplace_back(key.substr(0, end));
    it->Seek(out.back() + '\x01'); // the next path: past "<path>\0..."
  }
  if (!it->status().ok())
    return fail(it->status(), "scan failed");
  return out;
}

std::optional<column> kv_store::family(const std::string& name) const {
  for (size_t i = 0; i < impl_->families.size(); ++i)
    if (impl_->families[i] == name)
      return static_cast<column>(2 + i);
  return std::nullopt;
}

const std::string& kv_store::dir() const noexcept {
  return impl_->dir;
}

std::string state_prefix(const std::string& path) {
  std::string p = path;
  p.push_back('\0');
  return p;
}

} // namespace wharf::runtime
