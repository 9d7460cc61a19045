#pragma once
/// A fresh directory under $TMPDIR (or /tmp), removed with its contents on destruction.

#include <cstdlib>
#include <filesystem>
#include <stdexcept>
#include <string>

namespace wharf::test {

class temp_dir {
public:
  explicit temp_dir(const std::string& tag = "wharf-test") {
    auto base = std::filesystem::temp_directory_path() / (tag + ".XXXXXX");
    std::string tmpl = base.string();
    if (::mkdtemp(tmpl.data()) == nullptr)
      throw std::runtime_error("mkdtemp failed for " + tmpl);
    path_ = tmpl;
  }
  ~temp_dir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  temp_dir(const temp_dir&) = delete;
  temp_dir& operator=(const temp_dir&) = delete;

  const std::filesystem::path& path() const noexcept { return path_; }
  std::string str() const { return path_.string(); }

private:
  std::filesystem::path path_;
};

} // namespace wharf::test
