#include "common/io/security/keys.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zmq.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <set>

namespace todo::security {
namespace {

constexpr std::string_view kZ85Alphabet =
    "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#";
// A key file is a few lines; an allow-list a few thousand keys at most.
constexpr size_t kMaxKeyFileBytes = 1 << 20;

bool IsSpace(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f'; }

std::string_view Trim(std::string_view s) {
  while (!s.empty() && IsSpace(s.front())) s.remove_prefix(1);
  while (!s.empty() && IsSpace(s.back())) s.remove_suffix(1);
  return s;
}

// Reads a whole regular file of at most kMaxKeyFileBytes; `mode` gets its
// permission bits.
StatusOr<std::string> ReadSmallFile(const std::string& path, mode_t* mode) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Status::BadRequest("cannot read " + path + ": " + std::strerror(errno));
  struct stat st {};
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    close(fd);
    return Status::BadRequest("cannot read " + path + ": not a regular file");
  }
  if (static_cast<size_t>(st.st_size) > kMaxKeyFileBytes) {
    close(fd);
    return Status::BadRequest(path + " is too big for a key file (" + std::to_string(st.st_size) +
                              " bytes)");
  }
  *mode = st.st_mode & 07777;
  std::string text(static_cast<size_t>(st.st_size), '\0');
  size_t got = 0;
  while (got < text.size()) {
    ssize_t n = read(fd, text.data() + got, text.size() - got);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      int err = n < 0 ? errno : 0;
      close(fd);
      return Status::BadRequest("cannot read " + path + ": " +
                                (err ? std::strerror(err) : "file shrank while read"));
    }
    got += static_cast<size_t>(n);
  }
  close(fd);
  return text;
}

// Reads `path` and parses it as a file of exactly one key; `what` names the
// kind of file in messages ("secret key file").
StatusOr<CurveKey> LoadOneKey(const std::string& path, std::string_view what, mode_t* mode) {
  auto text = ReadSmallFile(path, mode);
  if (!text.ok()) return text.status();
  auto keys = ParseKeyText(*text, path);
  if (!keys.ok()) return keys.status();
  if (keys->empty()) {
    return Status::BadRequest(path + ": no key found (a " + std::string(what) +
                              " holds one line of 40 Z85 characters)");
  }
  if (keys->size() > 1) {
    return Status::BadRequest(path + ": holds " + std::to_string(keys->size()) + " keys; a " +
                              std::string(what) + " holds exactly one");
  }
  return keys->front();
}

std::string ModeText(mode_t mode) {
  char buf[16];
  snprintf(buf, sizeof buf, "%04o", static_cast<unsigned>(mode & 07777));
  return buf;
}

}  // namespace

bool HasCurve() { return zmq_has("curve") != 0; }

StatusOr<CurveKey> DecodeZ85Key(std::string_view text) {
  if (text.size() != kZ85KeyChars) {
    return Status::BadRequest("not a CURVE key: expected 40 Z85 characters, got " +
                              std::to_string(text.size()));
  }
  for (size_t i = 0; i < text.size(); ++i) {
    if (kZ85Alphabet.find(text[i]) == std::string_view::npos) {
      return Status::BadRequest("not a CURVE key: character " + std::to_string(i + 1) +
                                " is not a Z85 character");
    }
  }
  char z85[kZ85KeyChars + 1];
  std::memcpy(z85, text.data(), kZ85KeyChars);
  z85[kZ85KeyChars] = '\0';
  CurveKey key{};
  if (zmq_z85_decode(key.data(), z85) == nullptr) {
    return Status::BadRequest("not a CURVE key: invalid Z85 (a 5-character group is out of range)");
  }
  return key;
}

std::string EncodeZ85Key(const CurveKey& key) {
  char z85[kZ85KeyChars + 1] = {};
  zmq_z85_encode(z85, key.data(), key.size());
  return std::string(z85, kZ85KeyChars);
}

StatusOr<CurveKey> DerivePublicKey(const CurveKey& secret) {
  std::string secret_z85 = EncodeZ85Key(secret);
  char public_z85[kZ85KeyChars + 1] = {};
  if (zmq_curve_public(public_z85, secret_z85.c_str()) != 0) {
    return Status::Internal("this libzmq has no CURVE support (built without libsodium)");
  }
  return DecodeZ85Key(std::string_view(public_z85, kZ85KeyChars));
}

StatusOr<KeyPair> GenerateKeyPair() {
  char public_z85[kZ85KeyChars + 1] = {};
  char secret_z85[kZ85KeyChars + 1] = {};
  if (zmq_curve_keypair(public_z85, secret_z85) != 0) {
    return Status::Internal("this libzmq has no CURVE support (built without libsodium)");
  }
  auto pub = DecodeZ85Key(std::string_view(public_z85, kZ85KeyChars));
  auto sec = DecodeZ85Key(std::string_view(secret_z85, kZ85KeyChars));
  std::memset(secret_z85, 0, sizeof secret_z85);
  if (!pub.ok() || !sec.ok()) return Status::Internal("zmq_curve_keypair returned a bad key");
  return KeyPair{*pub, *sec};
}

StatusOr<std::vector<CurveKey>> ParseKeyText(std::string_view text, std::string_view file) {
  std::vector<CurveKey> keys;
  size_t line_no = 0;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string_view::npos) end = text.size();
    std::string_view line = Trim(text.substr(pos, end - pos));
    pos = end + 1;
    ++line_no;
    // Z85 uses '#' but never first in a group: a 5-character group
    // starting with '#' would exceed 2^32 - 1. So '#' first is a comment.
    if (line.empty() || line.front() == '#') continue;
    size_t word_end = 0;
    while (word_end < line.size() && !IsSpace(line[word_end])) ++word_end;
    std::string_view word = line.substr(0, word_end);
    std::string_view rest = Trim(line.substr(word_end));
    auto key = DecodeZ85Key(word);
    std::string origin = std::string(file) + ":" + std::to_string(line_no) + ": ";
    if (!key.ok()) return Status::BadRequest(origin + key.status().message());
    if (!rest.empty() && rest.front() != '#') {
      return Status::BadRequest(origin +
                                "unexpected text after the key (one key a line; '#' "
                                "starts a comment)");
    }
    keys.push_back(*key);
  }
  return keys;
}

std::string FormatKeyFile(std::string_view header, const CurveKey& key) {
  std::string out = "# ";
  for (char c : header) out += (c == '\n' || c == '\r') ? ' ' : c;
  out += "\n";
  out += EncodeZ85Key(key);
  out += "\n";
  return out;
}

StatusOr<KeyPair> LoadSecretKeyFile(const std::string& path, KeyFileNotes* notes) {
  if (path.ends_with(".pub")) {
    return Status::BadRequest(path +
                              " looks like a public key file (.pub): give the secret key "
                              "file (PREFIX.key) written by todo-keygen");
  }
  mode_t mode = 0;
  auto secret = LoadOneKey(path, "secret key file", &mode);
  if (!secret.ok()) return secret.status();
  auto pub = DerivePublicKey(*secret);
  if (!pub.ok()) return pub.status();
  if ((mode & 077) != 0 && notes != nullptr) {
    notes->warnings.push_back("secret key file " + path + " has mode " + ModeText(mode) +
                              ": group or others may access it; chmod 600 it");
  }
  return KeyPair{*pub, *secret};
}

StatusOr<CurveKey> LoadPublicKeyFile(const std::string& path) {
  mode_t mode = 0;
  return LoadOneKey(path, "public key file", &mode);
}

StatusOr<std::vector<CurveKey>> LoadAllowList(const std::string& path) {
  if (path.ends_with(".key")) {
    return Status::BadRequest(path +
                              " looks like a secret key file (.key): an allow-list holds "
                              "public keys (PREFIX.pub files, or one key a line)");
  }
  mode_t mode = 0;
  auto text = ReadSmallFile(path, &mode);
  if (!text.ok()) return text.status();
  auto keys = ParseKeyText(*text, path);
  if (!keys.ok()) return keys.status();
  if (keys->empty()) {
    return Status::BadRequest(path + ": no key found (an allow-list holds one public key a line)");
  }
  std::vector<CurveKey> unique;
  std::set<CurveKey> seen;
  for (const CurveKey& k : *keys) {
    if (seen.insert(k).second) unique.push_back(k);
  }
  return unique;
}

StatusOr<CurveKey> ParseKeyOrFile(std::string_view value) {
  if (value.size() == kZ85KeyChars) {
    if (auto key = DecodeZ85Key(value); key.ok()) return key;
  }
  if (value.empty()) return Status::BadRequest("empty key: give 40 Z85 characters or a .pub file");
  auto key = LoadPublicKeyFile(std::string(value));
  if (!key.ok() && value.size() != kZ85KeyChars) {
    return Status::BadRequest("neither a key (40 Z85 characters) nor a key file: " +
                              key.status().message());
  }
  return key;
}

}  // namespace todo::security
