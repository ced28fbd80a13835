// CurveZMQ for todo-node and todo-router: the flags, loading their key
// files, and the socket options of a CURVE server and a CURVE client.
//
//   --curve-secret FILE  this process's secret key (PREFIX.key from
//                        todo-keygen); its socket becomes a CURVE server
//                        (and the router's node connections CURVE clients)
//   --curve-allow FILE   public keys of the clients let in (repeatable;
//                        one Z85 key a line, '#' comments; a .pub file works)
//
// Both or neither: with a secret, a process admits only the listed keys,
// authenticated by its ZapHandler (zap_handler.h). Without, it is plaintext
// and open, as before. Key file format: keys.h.
//
// Part of todo_io (common/io): namespace todo::security, as before the move
// from router/security/, so the callers in node/ and router/ kept their names.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>
#include <zmq.hpp>

#include "common/io/security/keys.h"
#include "common/io/security/zap_handler.h"
#include "common/status.h"

namespace CLI {
class App;
}

namespace todo::security {

// The ZAP domain of our CURVE server sockets.
inline constexpr char kZapDomain[] = "todo";

struct CurveConfig {
  std::string secret_file;               // --curve-secret ("" = CURVE off)
  std::vector<std::string> allow_files;  // --curve-allow (repeatable)
  // Filled by LoadCurveConfig:
  std::optional<KeyPair> keys;        // from secret_file
  std::vector<CurveKey> allowed;      // from allow_files, repeats dropped
  std::vector<std::string> warnings;  // for the log, e.g. a secret file others can read

  bool enabled() const { return keys.has_value(); }
};

// Registers --curve-secret and --curve-allow on `app`, filling `config`;
// `clients` says who the allowed clients are, for the help text.
void AddCurveFlags(CLI::App& app, CurveConfig* config, std::string_view clients);

// Reads the files `config` names into keys and allowed. bad_request naming
// the flag, the file and the problem: one flag without the other, a file
// missing, unreadable, empty or malformed; internal if this libzmq has no
// CURVE. Does nothing when neither flag is given.
Status LoadCurveConfig(CurveConfig* config);

// Starts the ZAP handler for a CURVE server on `ctx` if `config` is enabled
// (nullptr otherwise). Keep it alive until the server socket is closed.
StatusOr<std::unique_ptr<ZapHandler>> StartZapHandler(zmq::context_t* ctx,
                                                      const CurveConfig& config);

// Before bind: makes `socket` a CURVE server with config's secret key, in
// ZAP domain kZapDomain with the domain enforced (no handler, no entry).
// Does nothing if `config` is not enabled. internal if an option is refused.
Status SecureServerSocket(zmq::socket_t& socket, const CurveConfig& config);

// Before connect: makes `socket` a CURVE client with config's keypair,
// expecting the server key `server_key`. Does nothing if `config` is not
// enabled; internal if it is and `server_key` is empty.
Status SecureClientSocket(zmq::socket_t& socket, const CurveConfig& config,
                          const std::optional<CurveKey>& server_key);

// One line for the startup log: "CURVE (public key ..., N client keys
// allowed)" or "plaintext ...".
std::string Describe(const CurveConfig& config);

}  // namespace todo::security
