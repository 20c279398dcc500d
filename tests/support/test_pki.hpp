#pragma once

// A throwaway PKI for TLS tests and benchmarks, made with the openssl
// command: a CA, certificates it signs (superlink, nodes, a client) and a
// second CA with a certificate of its own, which the first must refuse.

#include <cstdlib>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <vector>

namespace stamen::test {

/// Creates <dir>/ca.pem and, for each name, <dir>/<name>.pem and .key signed
/// by it; plus <dir>/other-ca.pem and <dir>/stranger.pem/.key signed by that.
/// Each certificate names itself as a DNS subject alternative name; the
/// superlink's also names 127.0.0.1 and localhost, where the tests reach it.
inline void make_test_pki(const std::filesystem::path& dir, const std::vector<std::string>& names) {
  std::filesystem::create_directories(dir);
  auto run = [](const std::string& cmd) {
    if (std::system((cmd + " >/dev/null 2>&1").c_str()) != 0)
      throw std::runtime_error("openssl failed: " + cmd);
  };
  auto d = dir.string() + "/";
  const std::string ec = "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes";
  auto make_ca = [&](const std::string& ca) {
    run("openssl req -x509 " + ec + " -keyout " + d + ca + ".key -out " + d + ca +
        ".pem -days 2 -subj /CN=" + ca);
  };
  auto make_cert = [&](const std::string& name, const std::string& ca) {
    auto san = "DNS:" + name + (name == "superlink" ? ",IP:127.0.0.1,DNS:localhost" : "");
    run("openssl req " + ec + " -keyout " + d + name + ".key -out " + d + name + ".csr -subj /CN=" + name +
        " -addext subjectAltName=" + san);
    run("openssl x509 -req -in " + d + name + ".csr -CA " + d + ca + ".pem -CAkey " + d + ca +
        ".key -CAcreateserial -copy_extensions copy -out " + d + name + ".pem -days 2");
  };
  make_ca("ca");
  make_ca("other-ca");
  for (auto& n : names) make_cert(n, "ca");
  make_cert("stranger", "other-ca");
}

}  // namespace stamen::test
