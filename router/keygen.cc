// todo-keygen: makes CURVE keypairs for todo-node, todo-router and clients.
//
//   todo-keygen --out PREFIX [--force]   writes PREFIX.key (the secret key,
//                                        mode 0600) and PREFIX.pub (the public
//                                        key); prints the public key
//   todo-keygen --public-of FILE         prints the public key of a secret
//                                        key file
//
// Key file format: common/io/security/keys.h. Keys come from libzmq's
// zmq_curve_keypair (libsodium's random generator). Exit status: 0, 1 on an
// error (a file exists without --force, a write fails), 2 on a usage error.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <iostream>
#include <string>

#include "common/io/security/keys.h"

using namespace todo;
using namespace todo::security;

namespace {

int Fail(const std::string& message) {
  std::cerr << "todo-keygen: error: " << message << "\n";
  return 1;
}

bool Exists(const std::string& path) {
  struct stat st {};
  return lstat(path.c_str(), &st) == 0;
}

// Writes `text` to `path` with mode `mode`, through a temporary file renamed
// into place, so a reader never sees half a key and the secret is never
// readable by others, whatever the umask.
Status WriteFileAtomically(const std::string& path, const std::string& text, mode_t mode) {
  std::string tmp = path + ".tmp";
  unlink(tmp.c_str());
  int fd = open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
  if (fd < 0) return Status::Internal("cannot create " + tmp + ": " + std::strerror(errno));
  bool ok = fchmod(fd, mode) == 0;
  size_t done = 0;
  while (ok && done < text.size()) {
    ssize_t n = write(fd, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    ok = n > 0;
    if (ok) done += static_cast<size_t>(n);
  }
  ok = ok && fsync(fd) == 0;
  int err = errno;
  ok = close(fd) == 0 && ok;
  if (!ok || rename(tmp.c_str(), path.c_str()) != 0) {
    if (ok) err = errno;
    unlink(tmp.c_str());
    return Status::Internal("cannot write " + path + ": " + std::strerror(err));
  }
  return Status::Ok();
}

std::string Today() {
  char buf[32] = "";
  time_t now = time(nullptr);
  struct tm tm {};
  if (gmtime_r(&now, &tm) != nullptr) strftime(buf, sizeof buf, "%Y-%m-%d", &tm);
  return buf;
}

int MakeKeyPair(const std::string& prefix, bool force) {
  std::string key_path = prefix + ".key";
  std::string pub_path = prefix + ".pub";
  if (!force) {
    for (const std::string& p : {key_path, pub_path}) {
      if (Exists(p)) return Fail(p + " exists; not overwritten (use --force to replace it)");
    }
  }
  auto pair = GenerateKeyPair();
  if (!pair.ok()) return Fail(pair.status().message());
  std::string base = prefix.substr(prefix.find_last_of('/') + 1);
  std::string made = "todo-keygen " + Today() + ": ";
  std::string secret_text = FormatKeyFile(
      made + "CURVE secret key '" + base + "'; keep it private (mode 0600)", pair->secret_key);
  std::string public_text = FormatKeyFile(
      made + "CURVE public key '" + base + "' (of " + base + ".key)", pair->public_key);
  if (Status s = WriteFileAtomically(key_path, secret_text, 0600); !s.ok()) {
    return Fail(s.message());
  }
  std::fill(secret_text.begin(), secret_text.end(), '\0');
  if (Status s = WriteFileAtomically(pub_path, public_text, 0644); !s.ok()) {
    return Fail(s.message());
  }
  std::cerr << "todo-keygen: wrote " << key_path << " (secret, mode 0600) and " << pub_path << "\n";
  std::cout << EncodeZ85Key(pair->public_key) << "\n";
  return 0;
}

int PrintPublicOf(std::string path) {
  if (!Exists(path) && Exists(path + ".key")) path += ".key";  // a PREFIX
  KeyFileNotes notes;
  auto pair = LoadSecretKeyFile(path, &notes);
  if (!pair.ok()) return Fail(pair.status().message());
  for (const std::string& w : notes.warnings) std::cerr << "todo-keygen: warning: " << w << "\n";
  std::cout << EncodeZ85Key(pair->public_key) << "\n";
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app(
      "todo-keygen: CURVE keypairs for the todo cluster (key format: one Z85 key a "
      "file, '#' comment lines)",
      "todo-keygen");
  std::string out;
  std::string public_of;
  bool force = false;
  auto* out_opt =
      app.add_option("--out", out, "write PREFIX.key (secret, mode 0600) and PREFIX.pub")
          ->type_name("PREFIX");
  auto* pub_opt =
      app.add_option("--public-of", public_of, "print the public key of a secret key file")
          ->type_name("FILE");
  out_opt->excludes(pub_opt);
  app.add_flag("--force", force, "with --out: replace existing files");
  try {
    app.parse(argc, argv);
    if (out.empty() && public_of.empty()) {
      throw CLI::ValidationError("give --out PREFIX or --public-of FILE");
    }
    if (force && out.empty()) throw CLI::ValidationError("--force goes with --out");
  } catch (const CLI::CallForHelp&) {
    std::cout << app.help();
    return 0;
  } catch (const CLI::ParseError& e) {
    std::cerr << "todo-keygen: error: " << e.what() << "\n";
    return 2;
  }
  if (!HasCurve()) return Fail("this libzmq has no CURVE support (built without libsodium)");
  if (!out.empty()) return MakeKeyPair(out, force);
  return PrintPublicOf(public_of);
}
