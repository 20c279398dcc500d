#include "actors/http_service.hpp"

#include <httplib.h>

#include <thread>

namespace stamen {

struct http_service::impl {
  std::unique_ptr<httplib::Server> server;
  std::thread thread;
};

expected<std::unique_ptr<http_service>> http_service::start(const http_options& opts, http_handler handler) {
  std::unique_ptr<http_service> out{new http_service};
  out->impl_ = std::make_unique<impl>();
  auto& server = out->impl_->server;
  if (opts.tls) {
    auto tls = std::make_unique<httplib::SSLServer>(opts.tls->certificate.c_str(), opts.tls->key.c_str());
    if (!tls->is_valid())
      return fail(errc::config_error, "HTTPS: cannot load '" + opts.tls->certificate + "' and '" +
                                          opts.tls->key + "'");
    server = std::move(tls);
  } else {
    server = std::make_unique<httplib::Server>();
  }
  // Small limits: the API takes no bodies, and a slow or garbage client is
  // dropped rather than held.
  server->set_payload_max_length(4096);
  server->set_read_timeout(5, 0);
  server->set_write_timeout(5, 0);
  server->Get(".*", [handler](const httplib::Request& req, httplib::Response& res) {
    // Path and parameters as they came: the handler checks them
    // (actors/http_route) and answers 400 for what it cannot read.
    http_answer a{500, "text/plain", "internal error\n"};
    try {
      a = handler(req.path, req.params);
    } catch (const std::exception& e) {
      a.body = std::string{"internal error: "} + e.what() + "\n";
    } catch (...) {
    }
    res.status = a.status;
    res.set_content(a.body, a.content_type.c_str());
  });
  int port = opts.port == 0 ? server->bind_to_any_port(opts.address)
                            : (server->bind_to_port(opts.address, opts.port) ? opts.port : -1);
  if (port <= 0)
    return fail(errc::io_error, "HTTP: cannot listen on " + opts.address + ":" + std::to_string(opts.port));
  out->port_ = static_cast<uint16_t>(port);
  out->impl_->thread = std::thread([s = server.get()] { s->listen_after_bind(); });
  return out;
}

http_service::~http_service() {
  if (!impl_) return;
  impl_->server->stop();
  if (impl_->thread.joinable()) impl_->thread.join();
}

}  // namespace stamen
