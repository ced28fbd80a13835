// CURVE keys and key files (CurveZMQ, RFC 26): decoding, the file format,
// and reading key files with errors that name the file and the problem.
//
// Key file format (what todo-keygen writes; one key per file):
//
//   # todo-keygen: CURVE public key of 'n1' (n1.pub; the secret is n1.key)
//   Yne@$w-vo<fVvi]a<NY6T1ed:M$fCG*[IaLV{hID
//
//   - a key is 40 characters of Z85 (ZeroMQ RFC 32) encoding 32 bytes;
//   - blank lines are ignored, and so are lines starting with '#' (Z85
//     uses '#', but never as the first character of a key);
//   - after a key, on its line, only whitespace and a '#' comment may follow.
//
// PREFIX.key holds the secret key (its public key is derived from it);
// PREFIX.pub holds the public key. An allow-list (--curve-allow) has the same
// format with any number of public keys, one a line, so a .pub file is an
// allow-list of one.
//
// Error messages never quote the text of a key file: it may hold a secret.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace todo::security {

// A CURVE public or secret key: 32 bytes.
using CurveKey = std::array<uint8_t, 32>;

// Characters of a Z85-encoded key.
inline constexpr size_t kZ85KeyChars = 40;

// A keypair: `public_key` is derived from `secret_key`.
struct KeyPair {
  CurveKey public_key{};
  CurveKey secret_key{};
};

// True if this libzmq supports CURVE (it was built with libsodium).
bool HasCurve();

// Decodes 40 characters of Z85. bad_request saying what is wrong (length,
// a character outside Z85 and where, a group out of range); the message
// does not quote `text`.
StatusOr<CurveKey> DecodeZ85Key(std::string_view text);

// The 40-character Z85 text of `key`.
std::string EncodeZ85Key(const CurveKey& key);

// The public key of `secret`; internal if this libzmq has no CURVE.
StatusOr<CurveKey> DerivePublicKey(const CurveKey& secret);

// A new random keypair (libsodium's generator, through libzmq); internal if
// this libzmq has no CURVE.
StatusOr<KeyPair> GenerateKeyPair();

// Parses key-file text (format above); returns every key in order, possibly
// none. Errors read "FILE:LINE: ...", `file` naming the file.
StatusOr<std::vector<CurveKey>> ParseKeyText(std::string_view text, std::string_view file);

// The text of a key file: the one-line comment `header` (a '#' is added;
// newlines in it become spaces), then the key.
std::string FormatKeyFile(std::string_view header, const CurveKey& key);

// What reading a file found besides its keys: warnings for the log.
struct KeyFileNotes {
  std::vector<std::string> warnings;
};

// Reads a secret key file (exactly one key) and derives its public key.
// bad_request naming the file if it is missing, unreadable, has no key or
// more than one, or a bad one; refuses a path ending in ".pub". A file that
// group or others may access gets a warning in `notes` (may be null).
StatusOr<KeyPair> LoadSecretKeyFile(const std::string& path, KeyFileNotes* notes);

// Reads a public key file (exactly one key), e.g. a node's PREFIX.pub.
StatusOr<CurveKey> LoadPublicKeyFile(const std::string& path);

// Reads an allow-list: at least one public key; repeats are dropped.
// Refuses a path ending in ".key" (a secret key file).
StatusOr<std::vector<CurveKey>> LoadAllowList(const std::string& path);

// A public key given on a command line: 40 characters of valid Z85 are the
// key itself; anything else names a public key file.
StatusOr<CurveKey> ParseKeyOrFile(std::string_view value);

}  // namespace todo::security
