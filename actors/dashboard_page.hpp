#pragma once

// The superlink's dashboard (`/` of its HTTP side): one self-contained page
// whose script polls the JSON API once a second and draws the runs, the
// selected run's learning curves (inline SVG), the nodes and the recent
// warnings. Nothing is fetched from elsewhere.

namespace stamen {

const char* dashboard_page();

}  // namespace stamen
