#pragma once

// The superlink broker's state and the functions its files share: the
// broker and its frames (superlink.cpp), the run service (run_service.cpp),
// the control verbs (run_control.cpp) and the HTTP API (superlink_http.cpp).
// Internal to actors/: not installed, and nothing outside the superlink
// includes it.

#include <chrono>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <unordered_map>
#include <vector>

#include <caf/io/broker.hpp>

#include <nlohmann/json_fwd.hpp>

#include "actors/interfaces.hpp"
#include "actors/link_liveness.hpp"
#include "actors/run_store.hpp"
#include "actors/superlink.hpp"
#include "actors/superlink_metrics.hpp"
#include "actors/transport.hpp"
#include "actors/wire_frame.hpp"
#include "config/app_bundle.hpp"
#include "messages/buffer.hpp"
#include "messages/config_record.hpp"
#include "messages/expected.hpp"
#include "runtime/run_events.hpp"

namespace stamen::superlink_detail {

using caf::io::connection_handle;

/// A submitted run whose bundle the superlink asked its submitter for.
struct pending_submit {
  std::string app;
  std::string library;
  std::string hash;
  buffer run_config;  ///< encoded, as sent to nodes
  config_record decoded;
  uint64_t min_nodes = 0;
  std::string owner;               ///< the submitter key's fingerprint
  std::string signer_certificate;  ///< and its certificate and bundle
  std::string bundle_signature;    ///< signature, for the nodes
};

struct peer {
  enum class role { pending, node, client };
  role kind = role::pending;
  std::string nonce;
  std::string where;  ///< "host:port", for log lines
  uint64_t node_id = 0;  ///< its first node; a link carries node_id .. node_id + nodes - 1
  uint32_t nodes = 0;
  supernode_actor proxy;  ///< stands for all of them in the grid
  wire::frame_assembler frames;
  link_writer writer;
  link_liveness alive;
  std::optional<pending_submit> awaiting_bundle;  ///< a submitter's run, until its bundle is here
  std::optional<pending_submit> storing;  ///< and while its bundle is stored, off the broker's thread
  double joined_at = 0;  ///< Unix seconds, once a node
  /// When it connected: a peer still pending after the handshake timeout
  /// is closed.
  std::chrono::steady_clock::time_point connected_at = std::chrono::steady_clock::now();
  /// A node link: instructions sent to it and not yet answered. Only
  /// while it owes a reply may it send a frame of a reply's size; a link
  /// that owes nothing is held to the handshake limit, so a header that
  /// claims gigabytes from it is refused before anything is allocated.
  uint64_t owed = 0;
  /// A client: the key it proved (empty when the superlink takes anyone).
  std::string key;
};

/// A run that has not finished: pending in the queue, or starting or
/// running on a thread of its own.
struct live_run {
  run_record rec;
  config_record decoded;
  /// Connections that get its log lines as they come and its result at the
  /// end: its submitter (unless detached) and `stamen log --follow`s.
  std::vector<connection_handle> followers;
  std::shared_ptr<run_stop> stop = std::make_shared<run_stop>();
  /// Who asked for the stop (a key's fingerprint and address, or the address
  /// alone without TLS), for the run's reason.
  std::string stopped_by;
  /// Its ServerApp: a blocking actor the broker monitors, once started.
  caf::actor server_app;
  /// Its live status line (progress_line's), sent to its followers on the
  /// next heartbeat when it changed: at most a few frames a second however
  /// fast replies come.
  std::string progress;
  bool progress_sent = true;
  bool started = false;    ///< counted among the runs at once
  bool announced = false;  ///< its ServerApp loaded, nodes were told (a run frame)
};

/// What a node did for this superlink's runs, for the dashboard's nodes
/// table; kept while the superlink runs, across the node's reconnections.
struct node_activity {
  uint64_t replies = 0;
  uint64_t failures = 0;  ///< replies the strategy could not use, and replies that never came
  std::vector<uint64_t> runs;  ///< the runs it answered in (few: a set would cost more)
};

struct superlink_state {
  static inline const char* name = "stamen.superlink";
  superlink_options opts;
  grid_actor grid;
  std::unordered_map<connection_handle, peer> peers;
  std::unordered_map<uint64_t, connection_handle> by_node;
  std::unique_ptr<bundle_store> bundles;
  std::unique_ptr<run_store> store;
  std::map<uint64_t, live_run> runs;  ///< every run not finished
  std::deque<uint64_t> queue;         ///< pending runs, first come first served
  size_t started = 0;                 ///< runs starting or running
  superlink_metrics metrics;
  std::unordered_map<uint64_t, node_activity> activity;
  /// The last warnings and errors of the process, for the dashboard.
  struct recent_lines {
    std::mutex mtx;
    std::deque<std::string> lines;
  };
  std::shared_ptr<recent_lines> warnings = std::make_shared<recent_lines>();
};

using broker_ptr = caf::io::stateful_broker<superlink_state>*;

// The broker and its frames (superlink.cpp).

/// What a peer on `hdl` must have signed: the nonce this superlink sent it,
/// bound to the TLS connection (challenge_to_sign), so that a proof made
/// for another connection, relayed or replayed, does not verify here.
std::string proof_subject(connection_handle hdl, const peer& pr);

/// A fresh random 64-bit id from OpenSSL's CSPRNG: ids sent to peers tell
/// nothing about nonces or other ids.
uint64_t random_id(broker_ptr self);

/// Queues a frame on `hdl`'s connection and writes what the socket takes;
/// nothing when `hdl` is no longer a peer.
void send_frame(broker_ptr self, connection_handle hdl, wire::frame_type t,
                const std::vector<std::byte>& payload);

/// Tells a peer why it is refused (`retry`: whether it may try again
/// later), then closes its connection.
void refuse(broker_ptr self, connection_handle hdl, const std::string& why, bool retry);

/// Announces a run to a node's link (a run frame): its library, run
/// config and bundle hash.
void send_run(broker_ptr self, connection_handle hdl, const live_run& r);

/// Logs a failure to keep state: the superlink goes on (a run it cannot
/// record still runs), and the log says what was not kept.
void check_kept(broker_ptr self, const expected<void>& ok);

// The run service (run_service.cpp).

/// Counts a finished round or checkpoint (`kind`) of `value` seconds in
/// the metrics.
void tally(broker_ptr self, const std::string& kind, double value);

/// A reply of `node_id` in a run was used, or failed for `reason`.
void tally_reply(broker_ptr self, uint64_t run_id, uint64_t node_id, const std::string& phase,
                 const std::string& reason);

/// Sends one line of a run's log to whoever follows it, and keeps it.
void run_log(broker_ptr self, uint64_t run_id, const std::string& line);

/// Starts pending runs while fewer than --max-concurrent-runs are started.
void start_pending(broker_ptr self);

/// A submit frame from a pending peer: the run is refused, queued (its
/// bundle is stored here), or waits for its bundle (a fetch frame asks
/// the submitter for it).
void on_submit(broker_ptr self, connection_handle hdl, peer& pr, const buffer& payload);

/// The submitter's bundle arrived: checked, stored, and its run queued.
void on_submitted_bundle(broker_ptr self, connection_handle hdl, peer& pr, const buffer& payload);

/// A submitted bundle was stored (`ok`) or not (`what` says why) by the
/// thread that on_submitted_bundle started: its run is queued or refused.
void on_stored(broker_ptr self, connection_handle hdl, bool ok, const std::string& what);

/// A run's ServerApp thread reported a new status; the nodes hear of the
/// run once it is running.
void on_run_status(broker_ptr self, uint64_t run_id, const std::string& status);

/// A run's ServerApp ended (or the run was stopped before it started):
/// its status and result are kept and sent to its followers, the nodes
/// drop it, and the next pending run starts. `out` is the result when `ok`,
/// the reason otherwise; `partial` is a failed run's result up to its
/// failure (JSON, empty when its strategy had none).
void on_run_finished(broker_ptr self, uint64_t id, bool ok, const std::string& out, const std::string& partial);

/// What the store says was not finished when the superlink last stopped:
/// pending runs go back in the queue; runs that had started are failed
/// (their ServerApp's state went with the process).
void recover_runs(broker_ptr self);

// The control verbs (run_control.cpp).

/// Shipping code is remote code execution, and a run's control is its own:
/// a client is taken only with a key on the allow-list or the admin list
/// (proven as a node proves its own), unless the superlink was told to take
/// anyone. Returns the key's fingerprint (empty when it takes anyone).
expected<std::string> authorize_client(broker_ptr self, connection_handle hdl, const peer& pr,
                                const std::string& certificate,
                                const std::string& signature);

/// Ends a run's or a verb's answer to a client: whether it succeeded, and
/// its text (a result, JSON, or the reason it failed).
void send_result(broker_ptr self, connection_handle hdl, bool ok, const std::string& text);

/// A run as `stamen ls --format json` and the API show it.
nlohmann::json run_json(const run_record& r);

/// A pull's files were read (path and bytes in turn), or could not be
/// (`what` says why): they go to the client, then the result.
void on_artifacts(broker_ptr self, connection_handle hdl, const std::vector<std::string>& files, bool ok,
                  const std::string& what);

/// `stamen ls`, `log`, `stop`, `pull`, and `report`'s `result`.
void on_control(broker_ptr self, connection_handle hdl, peer& pr, const buffer& payload);

// The HTTP API (superlink_http.cpp).

/// The HTTP side's GETs, answered here so that state is read on this
/// thread: {status, content type, body}.
/// `request` is the decoded path, then the query's keys and values in turn.
std::vector<std::string> on_http(broker_ptr self, const std::vector<std::string>& request);

}  // namespace stamen::superlink_detail
