#include "cli/report_command.hpp"

#include <optional>

#include "cli/control_command.hpp"

#include <cstdlib>
#include <fstream>
#include <iostream>
#include <map>
#include <set>
#include <sstream>

namespace stamen {

namespace {

namespace fs = std::filesystem;
using nlohmann::json;

std::string escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
  return out;
}

// A gnuplot string literal: single quotes, doubled inside.
std::string gp_quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string{"''"} : std::string(1, c);
  return out + "'";
}

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// One line of a chart: a label and its (round, value) points.
struct series {
  std::string label;
  std::vector<std::pair<double, double>> points;
};

struct chart {
  std::string id;     ///< file name and the figure's id
  std::string title;
  std::string ylabel;
  std::vector<series> lines;
};

// Every (round, value) of `metric` in `phase` ("train" or "evaluate").
std::vector<std::pair<double, double>> metric_points(const json& doc, const std::string& phase,
                                                     const std::string& metric) {
  std::vector<std::pair<double, double>> out;
  if (!doc.contains("rounds")) return out;
  for (auto& r : doc["rounds"]) {
    auto& p = r.contains(phase) ? r[phase] : json{};
    if (p.is_object() && p.contains("metrics") && p["metrics"].contains(metric) && p["metrics"][metric].is_number())
      out.emplace_back(r.value("round", 0), p["metrics"][metric].get<double>());
  }
  return out;
}

std::vector<std::pair<double, double>> field_points(const json& doc, const std::string& phase, const std::string& field) {
  std::vector<std::pair<double, double>> out;
  if (!doc.contains("rounds")) return out;
  for (auto& r : doc["rounds"])
    if (r.contains(phase) && r[phase].contains(field) && r[phase][field].is_number())
      out.emplace_back(r.value("round", 0), r[phase][field].get<double>());
  return out;
}

std::vector<chart> charts_of(const std::vector<labelled_result>& results) {
  std::vector<chart> out;
  // One chart per metric, evaluate then train, in the order first seen.
  for (auto phase : {std::string{"evaluate"}, std::string{"train"}}) {
    std::vector<std::string> metrics;
    for (auto& [label, doc] : results)
      for (auto& r : doc.value("rounds", json::array()))
        if (r.contains(phase) && r[phase].contains("metrics"))
          for (auto& [k, v] : r[phase]["metrics"].items())
            if (v.is_number() && std::find(metrics.begin(), metrics.end(), k) == metrics.end()) metrics.push_back(k);
    for (auto& m : metrics) {
      chart c{phase + "-" + m, phase + ": " + m + " per round", m, {}};
      for (auto& [label, doc] : results) c.lines.push_back({label, metric_points(doc, phase, m)});
      out.push_back(std::move(c));
    }
  }
  chart replies{"replies", "train replies: results and failures per round", "replies", {}};
  chart time{"round-time", "round wall time by phase", "seconds", {}};
  for (auto& [label, doc] : results) {
    replies.lines.push_back({label + " results", field_points(doc, "train", "results")});
    replies.lines.push_back({label + " failures", field_points(doc, "train", "failures")});
    time.lines.push_back({label + " train", field_points(doc, "train", "seconds")});
    time.lines.push_back({label + " evaluate", field_points(doc, "evaluate", "seconds")});
  }
  out.push_back(std::move(replies));
  out.push_back(std::move(time));
  return out;
}

// Draws a chart with gnuplot; returns the SVG's text.
expected<std::string> draw(const chart& c, const fs::path& dir) {
  auto data = dir / "data";
  std::error_code ec;
  fs::create_directories(data, ec);
  std::ostringstream plot;
  plot << "set terminal svg size 720,360 enhanced font 'sans,11' background rgb 'white'\n"
       << "set output " << gp_quote((dir / (c.id + ".svg")).string()) << "\n"
       << "set title " << gp_quote(c.title) << " noenhanced\n"
       << "set xlabel 'round'\nset ylabel " << gp_quote(c.ylabel) << " noenhanced\n"
       << "set grid\nset key outside right top noenhanced\nset xtics 1\nset format y '%g'\n";
  std::vector<std::string> plots;
  for (size_t i = 0; i < c.lines.size(); ++i) {
    if (c.lines[i].points.empty()) continue;
    auto file = data / (c.id + "-" + std::to_string(i) + ".dat");
    std::ofstream out(file);
    out.precision(17);
    for (auto& [x, y] : c.lines[i].points) out << x << ' ' << y << '\n';
    plots.push_back(gp_quote(file.string()) + " using 1:2 with linespoints title " + gp_quote(c.lines[i].label));
  }
  if (plots.empty()) return std::string{};
  plot << "plot ";
  for (size_t i = 0; i < plots.size(); ++i) plot << (i ? ", " : "") << plots[i];
  plot << "\n";
  auto script = data / (c.id + ".gp");
  std::ofstream{script} << plot.str();
  auto errors = data / (c.id + ".err");
  std::string cmd = "gnuplot " + gp_quote(script.string()) + " 2> " + gp_quote(errors.string());
  int rc = std::system(cmd.c_str());
  if (rc != 0)
    return fail(errc::runtime_error, "gnuplot failed on " + script.string() + " (is gnuplot-nox installed?): " +
                                         slurp(errors));
  auto svg = slurp(dir / (c.id + ".svg"));
  // Inlined in the page: from the <svg> element on (no XML prolog).
  auto start = svg.find("<svg");
  return start == std::string::npos ? svg : svg.substr(start);
}

std::string table(const std::vector<std::string>& head, const std::vector<std::vector<std::string>>& rows) {
  std::string out = "<table><tr>";
  for (auto& h : head) out += "<th>" + escape(h) + "</th>";
  out += "</tr>";
  for (auto& r : rows) {
    out += "<tr>";
    for (auto& c : r) out += "<td>" + escape(c) + "</td>";
    out += "</tr>";
  }
  return out + "</table>";
}

}  // namespace

expected<void> write_report(const std::vector<labelled_result>& results, const fs::path& dir) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return fail(errc::io_error, "cannot create '" + dir.string() + "': " + ec.message());
  std::ostringstream html;
  html << "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>Stamen run report</title>\n"
       << "<style>body{font-family:sans-serif;max-width:1000px;margin:2em auto;color:#222}"
          "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:2px 8px;"
          "text-align:left;font-size:90%}figure{margin:1.5em 0}h2{margin-top:2em}</style></head><body>\n"
       << "<h1>Stamen run report</h1>\n";
  for (auto& [label, doc] : results) {
    html << "<h2>" << escape(label) << "</h2>\n";
    std::vector<std::vector<std::string>> rows;
    if (doc.contains("run_config"))
      for (auto& [k, v] : doc["run_config"].items()) rows.push_back({k, v.is_string() ? v.get<std::string>() : v.dump()});
    if (doc.contains("federation"))
      for (auto& [k, v] : doc["federation"].items()) rows.push_back({"federation " + k, v.is_string() ? v.get<std::string>() : v.dump()});
    rows.push_back({"rounds", std::to_string(doc.value("rounds", json::array()).size())});
    if (doc.contains("seconds")) rows.push_back({"seconds", doc["seconds"].dump()});
    if (doc.contains("error")) rows.push_back({"error", doc["error"].get<std::string>()});
    html << table({"setting", "value"}, rows) << "\n";
  }
  for (auto& c : charts_of(results)) {
    auto svg = draw(c, dir);
    if (!svg) return svg.error();
    if (svg->empty()) continue;
    json data = json::object();
    for (auto& l : c.lines)
      if (!l.points.empty()) data[l.label] = l.points;
    html << "<figure id=\"" << escape(c.id) << "\" data-series='" << escape(data.dump()) << "'>\n"
         << *svg << "\n<figcaption>" << escape(c.title) << " (also <code>" << escape(c.id)
         << ".svg</code>)</figcaption></figure>\n";
  }
  html << "<h2>Failures</h2>\n";
  std::vector<std::vector<std::string>> failures;
  for (auto& [label, doc] : results)
    for (auto& r : doc.value("rounds", json::array()))
      for (auto phase : {"train", "evaluate"})
        if (r.contains(phase))
          for (auto& why : r[phase].value("failure_reasons", json::array()))
            failures.push_back({label, std::to_string(r.value("round", 0)), phase, why.get<std::string>()});
  html << (failures.empty() ? "<p>None.</p>" : table({"result", "round", "phase", "reason"}, failures)) << "\n";
  html << "<h2>Faults injected</h2>\n";
  std::vector<std::vector<std::string>> faults;
  for (auto& [label, doc] : results)
    for (auto& f : doc.value("faults", json::array()))
      faults.push_back({label, f.value("round", json(0)).dump(), f.value("node", json(0)).dump(),
                        f.value("action", std::string{}), f.value("phase", std::string{})});
  html << (faults.empty() ? "<p>None.</p>" : table({"result", "round", "node", "action", "phase"}, faults)) << "\n";
  html << "</body></html>\n";
  std::ofstream out(dir / "report.html");
  out << html.str();
  out.close();
  if (!out) return fail(errc::io_error, "cannot write '" + (dir / "report.html").string() + "'");
  return {};
}

int run_report(const report_command& cmd) {
  std::vector<labelled_result> results;
  std::optional<control_request> superlink;
  for (auto& file : cmd.results) {
    std::error_code ec;
    // A run id (digits, and no such file): the superlink keeps its result.
    if (!file.empty() && file.size() <= 20 && file.find_first_not_of("0123456789") == std::string::npos &&
        !fs::exists(file, ec)) {
      if (!superlink) {
        auto found = superlink_of(cmd.app_dir, cmd.federation, cmd.federation_config, "report");
        if (!found) {
          std::cerr << "stamen: '" << file << "' is no file; as a run id: " << found.error().what << '\n';
          return 2;
        }
        superlink = std::move(*found);
      }
      auto text = fetch_run_result(*superlink, std::stoull(file));
      if (!text) {
        std::cerr << "stamen: run " << file << ": " << text.error().what << '\n';
        return 1;
      }
      auto doc = cluster_result_json(*text, std::stoull(file));
      if (!doc.contains("rounds")) {
        std::cerr << "stamen: run " << file << "'s result is not a strategy's result\n";
        return 1;
      }
      results.emplace_back("run " + file, std::move(doc));
      continue;
    }
    std::ifstream in(file);
    if (!in) {
      std::cerr << "stamen: cannot read '" << file << "'\n";
      return 2;
    }
    auto doc = json::parse(in, nullptr, false);
    if (doc.is_discarded() || !doc.is_object() || !doc.contains("rounds")) {
      std::cerr << "stamen: '" << file << "' is not a result of `stamen run --format json`\n";
      return 2;
    }
    results.emplace_back(fs::path{file}.stem().string(), std::move(doc));
  }
  auto ok = write_report(results, cmd.out);
  if (!ok) {
    std::cerr << "stamen: " << ok.error().what << '\n';
    return 1;
  }
  std::clog << "INFO :      report written to " << (fs::path{cmd.out} / "report.html").string() << '\n';
  return 0;
}

}  // namespace stamen
