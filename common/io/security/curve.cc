#include "common/io/security/curve.h"

#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>
#include <set>

namespace todo::security {
namespace {

// ZMQ_ZAP_ENFORCE_DOMAIN: a draft option of libzmq 4.3 (zmq.h defines it
// only with ZMQ_BUILD_DRAFT_API); Debian's libzmq5 accepts it.
constexpr int kZapEnforceDomain = 93;

}  // namespace

void AddCurveFlags(CLI::App& app, CurveConfig* config, std::string_view clients) {
  app.add_option("--curve-secret", config->secret_file,
                 "CURVE secret key file (todo-keygen's PREFIX.key): encrypt and authenticate")
      ->type_name("FILE");
  app.add_option("--curve-allow", config->allow_files,
                 "public keys of the " + std::string(clients) +
                     " allowed in (one Z85 key a line, or a .pub file; repeatable)")
      ->type_name("FILE")
      ->allow_extra_args(false);
}

Status LoadCurveConfig(CurveConfig* config) {
  if (config->secret_file.empty() && config->allow_files.empty()) return Status::Ok();
  if (config->secret_file.empty()) {
    return Status::BadRequest("--curve-allow needs --curve-secret (this process's secret key)");
  }
  if (config->allow_files.empty()) {
    return Status::BadRequest(
        "--curve-secret needs --curve-allow: the public keys of the clients to let in "
        "(nobody without a listed key may connect)");
  }
  if (!HasCurve()) {
    return Status::Internal(
        "--curve-secret: this libzmq has no CURVE support (it must be built with libsodium)");
  }
  KeyFileNotes notes;
  auto keys = LoadSecretKeyFile(config->secret_file, &notes);
  if (!keys.ok()) return Status::BadRequest("--curve-secret: " + keys.status().message());
  config->keys = *keys;
  config->warnings = std::move(notes.warnings);
  config->allowed.clear();
  std::set<CurveKey> seen;
  for (const std::string& file : config->allow_files) {
    auto allowed = LoadAllowList(file);
    if (!allowed.ok()) return Status::BadRequest("--curve-allow: " + allowed.status().message());
    for (const CurveKey& k : *allowed) {
      if (seen.insert(k).second) config->allowed.push_back(k);
    }
  }
  return Status::Ok();
}

StatusOr<std::unique_ptr<ZapHandler>> StartZapHandler(zmq::context_t* ctx,
                                                      const CurveConfig& config) {
  if (!config.enabled()) return std::unique_ptr<ZapHandler>();
  auto zap = std::make_unique<ZapHandler>(ctx, ZapPolicy(kZapDomain, config.allowed));
  if (Status s = zap->Start(); !s.ok()) return s;
  return zap;
}

Status SecureServerSocket(zmq::socket_t& socket, const CurveConfig& config) {
  if (!config.enabled()) return Status::Ok();
  try {
    socket.set(zmq::sockopt::curve_server, true);
    socket.set(zmq::sockopt::curve_secretkey,
               zmq::const_buffer(config.keys->secret_key.data(), config.keys->secret_key.size()));
    socket.set(zmq::sockopt::zap_domain, kZapDomain);
    int enforce = 1;
    if (zmq_setsockopt(socket.handle(), kZapEnforceDomain, &enforce, sizeof enforce) != 0) {
      // A libzmq without draft options: still safe while the handler,
      // started before the bind and stopped after the close, is there.
      spdlog::warn(
          "this libzmq lacks ZMQ_ZAP_ENFORCE_DOMAIN ({}); relying on the ZAP handler "
          "outliving the socket",
          zmq_strerror(zmq_errno()));
    }
    if (socket.get(zmq::sockopt::mechanism) != ZMQ_CURVE) {
      return Status::Internal("the socket did not switch to the CURVE mechanism");
    }
  } catch (const zmq::error_t& e) {
    return Status::Internal(std::string("cannot make a CURVE server socket: ") + e.what());
  }
  return Status::Ok();
}

Status SecureClientSocket(zmq::socket_t& socket, const CurveConfig& config,
                          const std::optional<CurveKey>& server_key) {
  if (!config.enabled()) return Status::Ok();
  if (!server_key) return Status::Internal("CURVE client socket without a server key");
  try {
    socket.set(zmq::sockopt::curve_serverkey,
               zmq::const_buffer(server_key->data(), server_key->size()));
    socket.set(zmq::sockopt::curve_publickey,
               zmq::const_buffer(config.keys->public_key.data(), config.keys->public_key.size()));
    socket.set(zmq::sockopt::curve_secretkey,
               zmq::const_buffer(config.keys->secret_key.data(), config.keys->secret_key.size()));
  } catch (const zmq::error_t& e) {
    return Status::Internal(std::string("cannot make a CURVE client socket: ") + e.what());
  }
  return Status::Ok();
}

std::string Describe(const CurveConfig& config) {
  if (!config.enabled()) {
    return "plaintext: no --curve-secret, so no encryption and no authentication";
  }
  std::string files;
  for (const std::string& f : config.allow_files) files += " " + f;
  size_t n = config.allowed.size();
  return "CURVE: public key " + EncodeZ85Key(config.keys->public_key) + ", " + std::to_string(n) +
         (n == 1 ? " client key" : " client keys") + " allowed (--curve-allow" + files + ")";
}

}  // namespace todo::security
