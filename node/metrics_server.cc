#include "node/metrics_server.h"

#include <httplib.h>

#include <cerrno>
#include <cstring>
#include <nlohmann/json.hpp>

#include "common/io/listen.h"

namespace todo::node {

MetricsServer::MetricsServer(NodeMetrics* metrics)
    : metrics_(metrics), server_(std::make_unique<httplib::Server>()) {}

MetricsServer::~MetricsServer() { Stop(); }

Status MetricsServer::Start(const metrics::ListenAddress& address) {
  server_->new_task_queue = [] { return new httplib::ThreadPool(2); };
  server_->set_keep_alive_timeout(5);
  // No SO_REUSEPORT (httplib's default): a port another process serves is
  // refused, not shared.
  server_->set_socket_options(io::SetExclusiveListenOptions);
  server_->Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
    res.set_content(metrics_->PrometheusText(), "text/plain; version=0.0.4; charset=utf-8");
  });
  server_->Get("/health", [this](const httplib::Request&, httplib::Response& res) {
    bool up = metrics_->serving();
    res.status = up ? 200 : 503;
    nlohmann::ordered_json body = {
        {"status", up ? "serving" : "not serving"}, {"role", "node"}, {"name", metrics_->name()}};
    res.set_content(body.dump() + "\n", "application/json");
  });
  const std::string where = address.host + ":" + std::to_string(address.port);
  if (address.port == 0) {
    port_ = server_->bind_to_any_port(address.host);
    if (port_ < 0) return Status::Internal("cannot bind --metrics on " + where);
  } else {
    if (!server_->bind_to_port(address.host, address.port)) {
      return Status::Internal("cannot bind --metrics on " + where + ": " + std::strerror(errno));
    }
    port_ = address.port;
  }
  thread_ = std::thread([this] { server_->listen_after_bind(); });
  // stop() only stops a server whose accept loop has started.
  for (int i = 0; i < 5000 && !server_->is_running(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return Status::Ok();
}

void MetricsServer::Stop() {
  if (!thread_.joinable()) return;
  server_->stop();
  thread_.join();
}

}  // namespace todo::node
