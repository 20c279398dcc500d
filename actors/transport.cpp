#include "actors/transport.hpp"

#include <caf/io/middleman.hpp>
#include <caf/io/network/default_multiplexer.hpp>
#include <caf/io/network/doorman_impl.hpp>
#include <caf/io/network/interfaces.hpp>
#include <caf/io/network/stream_impl.hpp>
#include <caf/io/scribe.hpp>

#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <tuple>
#include <utility>
#include <optional>

namespace stamen {

namespace {

namespace net = caf::io::network;

std::string ssl_error() {
  auto code = ERR_get_error();
  if (code == 0) return "no detail from OpenSSL";
  char buf[256];
  ERR_error_string_n(code, buf, sizeof buf);
  ERR_clear_error();
  return buf;
}

// A file's modification time, so that replaced certificates are read again.
int64_t modified_ns(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return -1;
  return static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
}

// One OpenSSL context per set of files, shared by every connection that
// uses them: certificates and keys are read once, not at each connect
// (until a file changes). Authenticated both ways, as CAF's own OpenSSL
// module did: certificates are required on both sides and verified against
// the CA. The caller gets its own reference (the context may be replaced
// meanwhile by another thread seeing a file change).
using ctx_ptr = std::unique_ptr<SSL_CTX, decltype(&SSL_CTX_free)>;

ctx_ptr tls_context(const caf::actor_system_config& cfg) {
  using paths = std::tuple<std::string, std::string, std::string>;
  using times = std::array<int64_t, 3>;
  static std::mutex mu;
  static std::map<paths, std::pair<times, SSL_CTX*>> made;
  std::lock_guard<std::mutex> guard{mu};
  auto& [made_at, cached] = made[paths{cfg.openssl_cafile, cfg.openssl_certificate, cfg.openssl_key}];
  // The files' times: certificates renewed in place take effect for the next
  // connection, as they did when every connection read them.
  times now{modified_ns(cfg.openssl_cafile), modified_ns(cfg.openssl_certificate),
            modified_ns(cfg.openssl_key)};
  auto share = [](SSL_CTX* c) {
    SSL_CTX_up_ref(c);
    return ctx_ptr{c, SSL_CTX_free};
  };
  if (cached != nullptr && made_at == now) return share(cached);
  SSL_CTX* ctx = SSL_CTX_new(TLS_method());
  if (ctx == nullptr) return ctx_ptr{nullptr, SSL_CTX_free};
  bool ok = SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION) == 1 &&
            SSL_CTX_use_certificate_chain_file(ctx, cfg.openssl_certificate.c_str()) == 1 &&
            SSL_CTX_use_PrivateKey_file(ctx, cfg.openssl_key.c_str(), SSL_FILETYPE_PEM) == 1 &&
            SSL_CTX_load_verify_locations(ctx, cfg.openssl_cafile.c_str(), nullptr) == 1 &&
            // AES-128-GCM first: a quarter faster than AES-256 here, with
            // AES-NI, and what moves a model's bytes.
            SSL_CTX_set_ciphersuites(
                ctx, "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256") == 1;
  if (!ok) {
    SSL_CTX_free(ctx);
    return ctx_ptr{nullptr, SSL_CTX_free};
  }
  SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nullptr);
  SSL_CTX_set_mode(ctx, SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER | SSL_MODE_RELEASE_BUFFERS);
  // Records are read from the socket 256 KiB at a time, not two system
  // calls each (header, then body): see send_buffer. The buffer is released
  // whenever it holds no partial record, so an idle session keeps none.
  SSL_CTX_set_read_ahead(ctx, 1);
  SSL_CTX_set_default_read_buffer_len(ctx, 256 << 10);
  // The context these files made before they changed goes: sessions still
  // using it hold their own reference.
  if (cached != nullptr) SSL_CTX_free(cached);
  made_at = now;
  cached = ctx;
  return share(ctx);
}

// What a TLS session's socket BIO holds back: OpenSSL hands its BIO one
// record at a time (at most 16 KiB, TLS's limit), and a system call per
// record costs more than the cipher on a virtual machine whose kernel pays
// for every interrupt toggle (see the performance page). Records gather
// here and go to the socket in sends of up to `capacity` bytes.
struct send_buffer {
  static constexpr size_t capacity = 256 << 10;
  // Allocated by the first record and released once the session has sent
  // everything (release): an idle connection holds none of it, as OpenSSL's
  // own buffers (SSL_MODE_RELEASE_BUFFERS), so a superlink with a thousand
  // TLS nodes does not keep half a gigabyte of them.
  std::unique_ptr<char[]> data;
  size_t begin = 0, end = 0;
  bool empty() const { return begin == end; }
  void release() {
    if (empty()) data.reset();
  }
};

// Sends what `sb` holds, with MSG_NOSIGNAL: a peer that went away is an
// error value on this connection, not a signal to the process. (CAF's
// session blocked and unblocked the signal around every call instead.)
// True once nothing is left; false with errno set otherwise.
bool send_held(int fd, send_buffer& sb) {
  while (!sb.empty()) {
    auto n = ::send(fd, sb.data.get() + sb.begin, sb.end - sb.begin, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    sb.begin += static_cast<size_t>(n);
  }
  sb.begin = sb.end = 0;
  return true;
}

bool would_block() { return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR; }

int buffered_write(BIO* b, const char* data, int len) {
  auto& sb = *static_cast<send_buffer*>(BIO_get_data(b));
  BIO_clear_retry_flags(b);
  if (sb.end + static_cast<size_t>(len) > send_buffer::capacity) {
    int fd = -1;
    BIO_get_fd(b, &fd);
    if (!send_held(fd, sb)) {
      if (!would_block()) return -1;
      if (sb.begin > 0) {  // room made at the front: keep what is left there
        std::memmove(sb.data.get(), sb.data.get() + sb.begin, sb.end - sb.begin);
        sb.end -= sb.begin;
        sb.begin = 0;
      }
      if (sb.end + static_cast<size_t>(len) > send_buffer::capacity) {
        BIO_set_retry_write(b);
        return -1;
      }
    }
  }
  if (!sb.data) sb.data.reset(new char[send_buffer::capacity]);
  std::memcpy(sb.data.get() + sb.end, data, static_cast<size_t>(len));
  sb.end += static_cast<size_t>(len);
  return len;
}

long buffered_ctrl(BIO* b, int cmd, long num, void* ptr) {
  static auto* base = BIO_meth_get_ctrl(BIO_s_socket());
  if (cmd == BIO_CTRL_WPENDING) {
    auto& sb = *static_cast<send_buffer*>(BIO_get_data(b));
    return static_cast<long>(sb.end - sb.begin);
  }
  if (cmd != BIO_CTRL_FLUSH) return base(b, cmd, num, ptr);
  // The handshake flushes after each flight; application data is flushed
  // by the session once an SSL_write returns.
  BIO_clear_retry_flags(b);
  int fd = -1;
  BIO_get_fd(b, &fd);
  if (send_held(fd, *static_cast<send_buffer*>(BIO_get_data(b)))) return 1;
  if (would_block()) BIO_set_retry_write(b);
  return 0;
}

BIO_METHOD* buffered_socket_method() {
  static BIO_METHOD* m = [] {
    auto* base = BIO_s_socket();
    auto* x = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK | BIO_TYPE_DESCRIPTOR,
                           "stamen socket");
    BIO_meth_set_write(x, buffered_write);
    BIO_meth_set_read(x, BIO_meth_get_read(base));
    BIO_meth_set_puts(x, BIO_meth_get_puts(base));
    BIO_meth_set_ctrl(x, buffered_ctrl);
    BIO_meth_set_create(x, BIO_meth_get_create(base));
    BIO_meth_set_destroy(x, BIO_meth_get_destroy(base));
    return x;
  }();
  return m;
}

// Where a TLS connection puts a frame's payload: once its broker has said
// where that goes (read_frame), the session decrypts the payload's bytes
// straight into it instead of into CAF's read buffer for the broker to copy
// again, which saves a copy of every model received (OpenSSL copies out of
// its own record buffer in any case). `placed` counts what went there since
// the broker last took account of it; CAF's read buffer holds nothing
// meaningful for those bytes. A broker that reads a TLS connection other
// than through read_frame never sets a payload, and reads as before.
struct direct_read {
  buffer owner;  // keeps the payload alive while bytes may still land in it
  std::byte* at = nullptr;
  size_t left = 0;
  size_t placed = 0;
  // The connection's session, for what a broker asks of it by handle
  // (channel_binding, peer_fingerprint); it lives as long as the scribe.
  SSL* ssl = nullptr;
};

// The direct reads of this process's TLS connections by handle, for
// read_frame (a broker reaches its scribes only through handles). Guarded:
// each actor system has its own I/O thread.
class direct_reads {
 public:
  void add(caf::io::connection_handle h, std::shared_ptr<direct_read> d) {
    std::lock_guard<std::mutex> guard{mu_};
    map_[h.id()] = std::move(d);
  }
  void remove(caf::io::connection_handle h, const direct_read* d) {
    std::lock_guard<std::mutex> guard{mu_};
    auto i = map_.find(h.id());
    if (i != map_.end() && i->second.get() == d) map_.erase(i);
  }
  std::shared_ptr<direct_read> find(caf::io::connection_handle h) {
    std::lock_guard<std::mutex> guard{mu_};
    auto i = map_.find(h.id());
    return i == map_.end() ? nullptr : i->second;
  }

 private:
  std::mutex mu_;
  std::map<int64_t, std::shared_ptr<direct_read>> map_;
};

direct_reads& tls_direct_reads() {
  static auto* r = new direct_reads;  // never destroyed: scribes may outlive statics
  return *r;
}

// One TLS connection on a non-blocking socket, and the policy CAF's stream
// template calls for each socket event. The handshake runs as the socket
// becomes ready, inside the first reads and writes.
class tls_session {
 public:
  /// A session on `fd`; a connecting one (`peer_name` set) checks that the
  /// peer's certificate names `peer_name` (a DNS or IP subject alternative
  /// name) besides its CA's signature, as a browser or Flower's SuperNode does.
  static std::optional<tls_session> make(const ctx_ptr& ctx, int fd, bool accepting,
                                         const std::string& peer_name = {}) {
    if (ctx == nullptr) return std::nullopt;
    tls_session s{SSL_new(ctx.get())};
    BIO* bio = s.ssl_ ? BIO_new(buffered_socket_method()) : nullptr;
    if (bio == nullptr) return std::nullopt;
    s.direct_->ssl = s.ssl_;
    if (!peer_name.empty() && !expect_name(s.ssl_, peer_name)) return std::nullopt;
    BIO_set_fd(bio, fd, BIO_NOCLOSE);
    BIO_set_data(bio, s.sent_.get());
    SSL_set_bio(s.ssl_, bio, bio);
    if (accepting) SSL_set_accept_state(s.ssl_);
    else SSL_set_connect_state(s.ssl_);
    ERR_clear_error();
    auto err = s.handshake();
    if (err != 0 && err != SSL_ERROR_WANT_READ && err != SSL_ERROR_WANT_WRITE) return std::nullopt;
    return std::optional<tls_session>{std::move(s)};
  }

  tls_session(tls_session&& x) noexcept
      : ssl_(std::exchange(x.ssl_, nullptr)),
        handshaking_(x.handshaking_),
        held_(x.held_),
        direct_(std::move(x.direct_)),
        sent_(std::move(x.sent_)) {}
  tls_session& operator=(tls_session&&) = delete;
  ~tls_session() { SSL_free(ssl_); }

  // OpenSSL's error queue is per thread and shared by every session on it:
  // SSL_get_error misreads a mere "want read" as a fatal error when an
  // earlier failure (another peer's refused handshake) left an entry there,
  // and a healthy connection would be closed. Each call starts clean.
  net::rw_state read_some(size_t& result, net::native_socket fd, void* buf, size_t len) {
    // What OpenSSL wrote while it read (the end of a handshake, a key
    // update) goes out without waiting for the next SSL_write.
    if (!held_ && !sent_->empty()) send_held(fd, *sent_);
    auto& d = *direct_;
    if (d.left == 0)
      return io(result, len, [&] { return SSL_read(ssl_, buf, static_cast<int>(len)); }, false);
    // CAF asks for at most what is left of the piece it was told to read,
    // which never reaches past the payload.
    len = std::min(len, d.left);
    auto st = io(result, len, [&] { return SSL_read(ssl_, d.at, static_cast<int>(len)); }, false);
    d.at += result;
    d.left -= result;
    d.placed += result;
    return st;
  }
  // An SSL_write's records gather in the send buffer (buffered_write) and
  // what is left of them goes out when it returns. Where the socket takes
  // less, the last byte OpenSSL took is reported only once its records are
  // sent, so that CAF keeps asking to write (and a graceful shutdown waits).
  net::rw_state write_some(size_t& result, net::native_socket fd, const void* buf, size_t len) {
    result = 0;
    if (held_) {
      if (!send_held(fd, *sent_)) return would_block() ? net::rw_state::success : net::rw_state::failure;
      held_ = false;
      sent_->release();
      result = 1;
      return net::rw_state::success;
    }
    auto st = io(result, len, [&] { return SSL_write(ssl_, buf, static_cast<int>(len)); }, true);
    if (st != net::rw_state::success || sent_->empty() || send_held(fd, *sent_)) {
      sent_->release();
      return st;
    }
    if (!would_block()) return net::rw_state::failure;
    if (result > 0) {
      --result;
      held_ = true;
    }
    return st;
  }
  // Bytes may wait inside OpenSSL with nothing left on the socket (records
  // read ahead); the socket would not wake the stream for them.
  bool must_read_more(net::native_socket, size_t) { return SSL_has_pending(ssl_) == 1; }

  const std::shared_ptr<direct_read>& direct() const { return direct_; }

 private:
  explicit tls_session(SSL* ssl) : ssl_(ssl) {}

  static bool expect_name(SSL* ssl, const std::string& name) {
    auto* param = SSL_get0_param(ssl);
    in6_addr ip{};
    bool is_ip = inet_pton(AF_INET, name.c_str(), &ip) == 1 || inet_pton(AF_INET6, name.c_str(), &ip) == 1;
    // No fallback to the subject's CN, and no wildcard spanning labels.
    X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NEVER_CHECK_SUBJECT |
                                               X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
    return is_ip ? X509_VERIFY_PARAM_set1_ip_asc(param, name.c_str()) == 1
                 : X509_VERIFY_PARAM_set1_host(param, name.c_str(), name.size()) == 1;
  }

  // One step of the handshake: 0 once it is done, else SSL_get_error's code
  // (WANT_READ or WANT_WRITE while it waits for the socket).
  int handshake() {
    int rc = SSL_do_handshake(ssl_);
    if (rc == 1) {
      handshaking_ = false;
      return 0;
    }
    return SSL_get_error(ssl_, rc);
  }

  // What CAF's stream expects: success with 0 bytes while waiting, failure
  // when the connection is gone, and an indeterminate empty write (which
  // stops write events) once nothing is left to send.
  template <class F>
  net::rw_state io(size_t& result, size_t len, F f, bool writing) {
    ERR_clear_error();
    result = 0;
    if (handshaking_) {
      auto err = handshake();
      if (err == SSL_ERROR_WANT_READ)
        return writing && len == 0 ? net::rw_state::indeterminate : net::rw_state::success;
      if (err == SSL_ERROR_WANT_WRITE) return net::rw_state::success;
      if (err != 0) return net::rw_state::failure;
    }
    if (len == 0) return net::rw_state::indeterminate;
    int rc = f();
    if (rc > 0) {
      result = static_cast<size_t>(rc);
      return net::rw_state::success;
    }
    auto err = SSL_get_error(ssl_, rc);
    if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) return net::rw_state::success;
    return net::rw_state::failure;
  }

  SSL* ssl_ = nullptr;
  bool handshaking_ = true;
  bool held_ = false;  // the last byte of an SSL_write waits for its records to be sent
  std::shared_ptr<direct_read> direct_ = std::make_shared<direct_read>();
  std::unique_ptr<send_buffer> sent_ = std::make_unique<send_buffer>();
};

// A scribe over a TLS session: CAF's plain scribe with the session as its policy.
class tls_scribe : public caf::io::scribe {
 public:
  tls_scribe(net::default_multiplexer& mpx, net::native_socket fd, tls_session s)
      : scribe(net::conn_hdl_from_socket(fd)), direct_(s.direct()), stream_(mpx, fd, std::move(s)) {
    tls_direct_reads().add(hdl(), direct_);
  }
  ~tls_scribe() override { tls_direct_reads().remove(hdl(), direct_.get()); }

  void configure_read(caf::io::receive_policy::config config) override {
    stream_.configure_read(config);
    if (!launched_) launch();
  }
  void ack_writes(bool enable) override { stream_.ack_writes(enable); }
  std::vector<char>& wr_buf() override { return stream_.wr_buf(); }
  std::vector<char>& rd_buf() override { return stream_.rd_buf(); }
  void graceful_shutdown() override {
    stream_.graceful_shutdown();
    detach(&stream_.backend(), false);
  }
  void flush() override { stream_.flush(this); }
  std::string addr() const override {
    auto x = net::remote_addr_of_fd(stream_.fd());
    return x ? *x : std::string{};
  }
  uint16_t port() const override {
    auto x = net::remote_port_of_fd(stream_.fd());
    return x ? *x : 0;
  }
  void add_to_loop() override { stream_.activate(this); }
  void remove_from_loop() override { stream_.passivate(); }

 private:
  void launch() {
    launched_ = true;
    stream_.start(this);
    // The handshake needs the socket's write events before any data moves.
    stream_.force_empty_write(this);
  }

  bool launched_ = false;
  std::shared_ptr<direct_read> direct_;
  net::stream_impl<tls_session> stream_;
};

// Accepts TCP connections and wraps each in a TLS session before the broker
// sees it. A peer that fails the handshake (no certificate, one from another
// CA, or plaintext) is closed by the session and never gets past hello.
class tls_doorman : public net::doorman_impl {
 public:
  using net::doorman_impl::doorman_impl;

  bool new_connection() override {
    if (detached()) return false;
    auto& mpx = acceptor_.backend();
    auto fd = acceptor_.accepted_socket();
    net::nonblocking(fd, true);
    ERR_clear_error();
    auto session = tls_session::make(tls_context(parent()->system().config()), fd, true);
    if (!session) {
      net::close_socket(fd);
      return true;  // keep accepting; this peer alone is refused
    }
    auto s = caf::make_counted<tls_scribe>(mpx, fd, std::move(*session));
    auto hdl = s->hdl();
    parent()->add_scribe(std::move(s));
    return doorman::new_connection(&mpx, hdl);
  }
};

// A TCP connection with a time limit. CAF's own connect blocks until the
// kernel gives up (minutes, for a host behind a partition), and a node's
// broker must keep its heartbeats and backoff going meanwhile.
expected<int> tcp_connect(const std::string& host, uint16_t port, double timeout_s) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  if (int rc = getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &res); rc != 0)
    return fail(errc::io_error, "cannot resolve '" + host + "': " + gai_strerror(rc));
  std::unique_ptr<addrinfo, decltype(&freeaddrinfo)> guard{res, freeaddrinfo};
  std::string last = "no address";
  for (auto* ai = res; ai != nullptr; ai = ai->ai_next) {
    int fd = ::socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
    if (fd < 0) continue;
    int rc = ::connect(fd, ai->ai_addr, ai->ai_addrlen);
    if (rc != 0 && errno == EINPROGRESS) {
      pollfd p{fd, POLLOUT, 0};
      rc = ::poll(&p, 1, static_cast<int>(timeout_s * 1000));
      if (rc == 0) {
        ::close(fd);
        last = "no answer within " + std::to_string(static_cast<int>(timeout_s)) + "s";
        continue;
      }
      int err = 0;
      socklen_t len = sizeof err;
      getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
      errno = err;
      rc = err == 0 ? 0 : -1;
    }
    if (rc == 0) {
      int one = 1;
      setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
      return fd;
    }
    last = std::strerror(errno);
    ::close(fd);
  }
  return fail(errc::io_error, "cannot connect to " + host + ":" + std::to_string(port) + ": " + last);
}

net::default_multiplexer& mpx_of(caf::io::abstract_broker* self) {
  return static_cast<net::default_multiplexer&>(self->backend());
}

}  // namespace

expected<void> check_tls_files(const tls_files& f) {
  for (auto [what, path] : {std::pair{"CA certificate", &f.ca},
                            std::pair{"certificate", &f.certificate},
                            std::pair{"private key", &f.key}}) {
    std::error_code ec;
    if (path->empty())
      return fail(errc::config_error, std::string{"TLS needs a "} + what + " file");
    if (!std::filesystem::is_regular_file(*path, ec))
      return fail(errc::io_error, std::string{"TLS "} + what + " '" + *path + "' is not a readable file");
  }
  std::unique_ptr<SSL_CTX, decltype(&SSL_CTX_free)> ctx{SSL_CTX_new(TLS_method()), SSL_CTX_free};
  if (!ctx) return fail(errc::runtime_error, "cannot create an OpenSSL context: " + ssl_error());
  if (SSL_CTX_use_certificate_chain_file(ctx.get(), f.certificate.c_str()) != 1)
    return fail(errc::config_error, "cannot load certificate '" + f.certificate + "': " + ssl_error());
  if (SSL_CTX_use_PrivateKey_file(ctx.get(), f.key.c_str(), SSL_FILETYPE_PEM) != 1)
    return fail(errc::config_error, "cannot load private key '" + f.key + "': " + ssl_error());
  if (SSL_CTX_check_private_key(ctx.get()) != 1)
    return fail(errc::config_error, "private key '" + f.key + "' does not match certificate '" +
                                        f.certificate + "'");
  if (SSL_CTX_load_verify_locations(ctx.get(), f.ca.c_str(), nullptr) != 1)
    return fail(errc::config_error, "cannot load CA certificate '" + f.ca + "': " + ssl_error());
  return {};
}

void configure_links(caf::actor_system_config& cfg, const std::optional<tls_files>& tls) {
  cfg.load<caf::io::middleman>();
  if (tls) {
    // Our own TLS sessions read these (CAF's OpenSSL module is not used: it
    // reloads the files for every connection and blocks and unblocks SIGPIPE
    // around every record).
    cfg.openssl_cafile = tls->ca;
    cfg.openssl_certificate = tls->certificate;
    cfg.openssl_key = tls->key;
  }
  // An idle scheduler worker waits on its condition variable (woken by the
  // next job) instead of polling every 50 us for 500 rounds first: a
  // process with links is woken by its sockets, and on a virtual machine
  // each of those sleeps is a context switch that took 5-10% of both cores
  // from the I/O threads while a model moved (and made a 10,000-node
  // cluster round a fifth slower: see the performance page).
  cfg.set("work-stealing.moderate-poll-attempts", size_t{1});
}

expected<uint16_t> listen_on(caf::io::abstract_broker* self, uint16_t port, const std::string& bind,
                             bool tls) {
  const char* addr = bind.empty() ? nullptr : bind.c_str();
  if (!tls) {
    auto r = self->add_tcp_doorman(port, addr, true);
    if (!r)
      return fail(errc::io_error, "cannot listen on port " + std::to_string(port) + ": " +
                                      self->system().render(r.error()));
    return r->second;
  }
  auto fd = net::new_tcp_acceptor_impl(port, addr, true);
  if (!fd)
    return fail(errc::io_error, "cannot listen on port " + std::to_string(port) + ": " +
                                    self->system().render(fd.error()));
  auto d = caf::make_counted<tls_doorman>(mpx_of(self), *fd);
  auto actual = d->port();
  self->add_doorman(std::move(d));
  return actual;
}

expected<caf::io::connection_handle> connect_to(caf::io::abstract_broker* self,
                                                const std::string& host, uint16_t port, bool tls,
                                                const std::string& peer_name) {
  auto fd = tcp_connect(host, port, 3);
  if (!fd) return fd.error();
  if (!tls) return self->add_scribe(*fd);
  ERR_clear_error();
  auto session = tls_session::make(tls_context(self->system().config()), *fd, false,
                                   peer_name.empty() ? host : peer_name);
  if (!session) {
    net::close_socket(*fd);
    return fail(errc::io_error, "TLS handshake with " + host + ":" + std::to_string(port) + " failed");
  }
  auto s = caf::make_counted<tls_scribe>(mpx_of(self), *fd, std::move(*session));
  auto hdl = s->hdl();
  self->add_scribe(std::move(s));
  return hdl;
}

std::chrono::nanoseconds seconds_ns(double s) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::duration<double>(s));
}

std::string format_seconds(double s) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2fs", s);
  return buf;
}

expected<std::optional<wire::frame>> read_frame(caf::io::abstract_broker* self,
                                                caf::io::new_data_msg& m,
                                                wire::frame_assembler& frames) {
  auto d = tls_direct_reads().find(m.handle);
  expected<std::optional<wire::frame>> f = std::optional<wire::frame>{};
  if (d != nullptr && d->placed > 0) {
    if (d->placed != m.buf.size())
      return fail(errc::runtime_error, "TLS read " + std::to_string(d->placed) +
                                           " payload bytes where " + std::to_string(m.buf.size()) +
                                           " were expected");
    f = frames.placed(std::exchange(d->placed, 0));
    if (d->left == 0) d->owner = buffer{};
  } else {
    f = frames.feed(reinterpret_cast<const std::byte*>(m.buf.data()), m.buf.size());
  }
  if (!f) return f;
  self->configure_read(m.handle, caf::io::receive_policy::exactly(frames.next_read()));
  if (d != nullptr && d->left == 0)
    if (auto t = frames.payload_target()) {
      d->owner = std::move(t->owner);
      d->at = t->at;
      d->left = t->left;
    }
  return f;
}

namespace {

// The finished TLS session of `hdl`, or why there is none.
expected<SSL*> session_of(caf::io::connection_handle hdl) {
  auto d = tls_direct_reads().find(hdl);
  if (d == nullptr || d->ssl == nullptr)
    return fail(errc::invalid_argument, "the connection is not a TLS session");
  if (SSL_is_init_finished(d->ssl) != 1)
    return fail(errc::invalid_argument, "the connection's TLS handshake has not finished");
  return d->ssl;
}

}  // namespace

expected<std::string> channel_binding(caf::io::connection_handle hdl) {
  auto ssl = session_of(hdl);
  if (!ssl) return ssl.error();
  // RFC 8446 section 7.5 (RFC 5705 for older versions): both ends derive
  // the same secret from this session's keys; a relay between two sessions
  // cannot make them agree.
  static constexpr char label[] = "EXPORTER-stamen-peer-proof";
  std::string out(32, '\0');
  if (SSL_export_keying_material(*ssl, reinterpret_cast<unsigned char*>(out.data()), out.size(), label,
                                 sizeof label - 1, nullptr, 0, 0) != 1)
    return fail(errc::runtime_error, "cannot export the TLS session's keying material: " + ssl_error());
  return out;
}

expected<std::string> peer_certificate(caf::io::connection_handle hdl) {
  auto ssl = session_of(hdl);
  if (!ssl) return ssl.error();
  X509* cert = SSL_get0_peer_certificate(*ssl);
  if (cert == nullptr) return fail(errc::invalid_argument, "the TLS peer sent no certificate");
  std::unique_ptr<BIO, decltype(&BIO_free)> bio{BIO_new(BIO_s_mem()), BIO_free};
  char* data = nullptr;
  if (bio == nullptr || PEM_write_bio_X509(bio.get(), cert) != 1)
    return fail(errc::runtime_error, "cannot encode the TLS peer's certificate: " + ssl_error());
  auto n = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<size_t>(n));
}

void pump(caf::io::abstract_broker* self, caf::io::connection_handle hdl, link_writer& w) {
  // 4 MiB pieces: large enough that a 1 GB model costs 256 pumps, small
  // enough that copying one takes about a millisecond.
  constexpr uint64_t piece = uint64_t{4} << 20;
  bool moved = false;
  while (w.in_flight < piece && !w.out.empty()) {
    w.in_flight += w.out.fill(self->wr_buf(hdl), piece);
    moved = true;
  }
  if (moved) self->flush(hdl);
}

expected<std::pair<std::string, uint16_t>> parse_address(const std::string& address,
                                                         const std::string& what) {
  auto colon = address.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == address.size())
    return fail(errc::config_error, what + " '" + address + "' is not of the form HOST:PORT");
  try {
    size_t used = 0;
    auto port = std::stoul(address.substr(colon + 1), &used);
    if (used != address.size() - colon - 1 || port == 0 || port > 65535) throw std::out_of_range{""};
    return std::pair{address.substr(0, colon), static_cast<uint16_t>(port)};
  } catch (const std::exception&) {
    return fail(errc::config_error, what + " '" + address + "' has no valid port (1-65535)");
  }
}

}  // namespace stamen
