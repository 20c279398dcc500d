#include "runtime/grid.hpp"

namespace stamen {

std::vector<message> grid::send_and_receive(std::vector<message> msgs, double timeout_s) {
  struct collector : reply_sink {
    std::vector<message> replies;
    void on_reply(const message& reply) override { replies.push_back(reply); }
  } sink;
  send_and_stream(std::move(msgs), timeout_s, sink);
  return std::move(sink.replies);
}

}  // namespace stamen
