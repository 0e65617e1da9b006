// results/index.html: one static page, grouped by experiment, with a contents list (index.h).
#include "runner/report/index.h"

#include <fmt/format.h>
#include <md4c-html.h>

#include <algorithm>
#include <map>
#include <set>
#include <sstream>
#include <vector>

#include "core/io.h"

namespace dyt {
namespace fs = std::filesystem;

namespace {

std::string html_escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '<') out += "&lt;";
    else if (c == '>') out += "&gt;";
    else if (c == '&') out += "&amp;";
    else if (c == '"') out += "&quot;";
    else out += c;
  }
  return out;
}

// An id usable as a URL fragment.
std::string anchor(const std::string& s) {
  std::string out;
  for (char c : s) out += std::isalnum(static_cast<unsigned char>(c)) ? static_cast<char>(std::tolower(c)) : '-';
  return out;
}

// Relative links and images of a Markdown file become relative to the page (`prefix` is the
// file's folder relative to the page's).
std::string rebase_links(const std::string& html, const std::string& prefix) {
  if (prefix.empty() || prefix == ".") return html;
  std::string out;
  size_t pos = 0;
  while (true) {
    size_t a = html.find("href=\"", pos), b = html.find("src=\"", pos);
    size_t at = std::min(a, b);
    if (at == std::string::npos) break;
    const size_t start = html.find('"', at) + 1;
    out += html.substr(pos, start - pos);
    const size_t end = html.find('"', start);
    const std::string url = html.substr(start, end - start);
    const bool absolute = url.find("://") != std::string::npos || url.rfind("#", 0) == 0 || url.rfind("/", 0) == 0 ||
                          url.rfind("mailto:", 0) == 0;
    out += absolute ? url : prefix + "/" + url;
    pos = end;
  }
  return out + html.substr(pos);
}

// A note's headings sit under its section's <h2>: # -> h3, ## -> h4, ...
std::string demote_headings(std::string html) {
  for (int level = 5; level >= 1; --level)
    for (const char* fmtstr : {"<h{}", "</h{}>"}) {
      const std::string from = fmt::format(fmt::runtime(fmtstr), level), to = fmt::format(fmt::runtime(fmtstr), std::min(6, level + 2));
      for (size_t p = html.find(from); p != std::string::npos; p = html.find(from, p + to.size())) html.replace(p, from.size(), to);
    }
  return html;
}

}  // namespace

std::string markdown_to_html(const std::string& md) {
  std::string out;
  const int rc = md_html(
      md.data(), static_cast<MD_SIZE>(md.size()),
      [](const MD_CHAR* text, MD_SIZE size, void* user) { static_cast<std::string*>(user)->append(text, size); }, &out,
      MD_DIALECT_GITHUB, 0);
  if (rc != 0) return "<pre>" + html_escape(md) + "</pre>\n";  // md4c refuses only on allocation failure
  return out;
}

fs::path write_results_index(const fs::path& out_root) {
  // A group is a folder with a table.md or figures (in it or in its plots/): an experiment's
  // results folder, or a reference record. A note <dir>.md beside it is shown first.
  struct Group {
    fs::path dir;
    std::vector<fs::path> images;
  };
  std::map<std::string, Group> groups;
  std::vector<fs::path> notes;  // Markdown files that are not a table.md
  if (fs::is_directory(out_root))
    for (auto it = fs::recursive_directory_iterator(out_root); it != fs::recursive_directory_iterator(); ++it) {
      const fs::path& p = it->path();
      if (it->is_directory() && (p.filename() == "tensorboard" || p.filename().string().rfind("seed", 0) == 0)) {
        it.disable_recursion_pending();  // run folders: nothing for the page
        continue;
      }
      if (!it->is_regular_file()) continue;
      const fs::path parent = p.parent_path();
      const fs::path owner = parent.filename() == "plots" ? parent.parent_path() : parent;
      if (p.filename() == "table.md") groups[fs::relative(owner, out_root).string()].dir = owner;
      if (p.extension() == ".png") {
        Group& g = groups[fs::relative(owner, out_root).string()];
        g.dir = owner;
        g.images.push_back(p);
      }
      if (p.extension() == ".md" && p.filename() != "table.md" && p.filename() != "README.md") notes.push_back(p);
    }
  std::set<fs::path> notes_used;
  std::string body, contents;
  for (auto& [name, g] : groups) {
    std::sort(g.images.begin(), g.images.end());
    const std::string id = anchor(name);
    contents += fmt::format("<li><a href=\"#{}\">{}</a></li>\n", id, html_escape(name));
    body += fmt::format("<section id=\"{}\">\n<h2>{}</h2>\n", id, html_escape(name));
    const fs::path note = fs::path(g.dir.string() + ".md");
    if (fs::exists(note)) {
      notes_used.insert(note);
      body += "<div class=\"note\">\n" +
              demote_headings(rebase_links(markdown_to_html(read_text(note)), fs::relative(note.parent_path(), out_root).string())) +
              "</div>\n";
    } else if (fs::exists(g.dir / "table.md")) {
      body += rebase_links(markdown_to_html(read_text(g.dir / "table.md")), fs::relative(g.dir, out_root).string());
    }
    std::vector<std::string> links;
    for (const char* f : {"table.csv", "table.tex", "table.md"})
      if (fs::exists(g.dir / f))
        links.push_back(fmt::format("<a href=\"{}\">{}</a>", fs::relative(g.dir / f, out_root).string(), f));
    if (!links.empty()) body += fmt::format("<p class=\"files\">table files: {}</p>\n", fmt::join(links, " · "));
    if (!g.images.empty()) {
      body += "<div class=\"figures\">\n";
      for (const auto& png : g.images) {
        const fs::path stem = fs::path(png).replace_extension("");
        std::vector<std::string> alt;
        for (const char* ext : {".pdf", ".svg", ".gp", ".dat"}) {
          const fs::path other = fs::path(stem).replace_extension(ext);
          if (fs::exists(other)) alt.push_back(fmt::format("<a href=\"{}\">{}</a>", fs::relative(other, out_root).string(), ext + 1));
        }
        body += fmt::format(
            "<figure><a href=\"{0}\"><img src=\"{0}\" alt=\"{1}\" loading=\"lazy\"></a>"
            "<figcaption>{1}{2}{3}</figcaption></figure>\n",
            fs::relative(png, out_root).string(), html_escape(stem.filename().string()), alt.empty() ? "" : " · ",
            fmt::join(alt, " · "));
      }
      body += "</div>\n";
    }
    body += "<p class=\"top\"><a href=\"#contents\">contents</a></p>\n</section>\n";
  }
  std::sort(notes.begin(), notes.end());
  std::string other;
  for (const auto& n : notes) {
    if (notes_used.count(n)) continue;
    const std::string name = fs::relative(n, out_root).string();
    const std::string id = anchor(name);
    contents += fmt::format("<li><a href=\"#{}\">{}</a></li>\n", id, html_escape(name));
    other += fmt::format("<section id=\"{}\">\n<h2>{}</h2>\n<div class=\"note\">\n{}</div>\n"
                         "<p class=\"top\"><a href=\"#contents\">contents</a></p>\n</section>\n",
                         id, html_escape(name),
                         demote_headings(rebase_links(markdown_to_html(read_text(n)), fs::relative(n.parent_path(), out_root).string())));
  }
  std::string html =
      "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n"
      "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>DyT suite results</title>\n"
      "<style>body{font-family:system-ui,sans-serif;max-width:1200px;margin:2em auto;padding:0 1em;line-height:1.45}"
      "table{border-collapse:collapse;margin:.6em 0}td,th{border:1px solid #ccc;padding:.25em .6em}"
      "th{background:#f4f4f4}code{background:#f4f4f4;padding:0 .2em}pre{background:#f4f4f4;padding:.6em;overflow-x:auto}"
      "section{border-top:1px solid #ddd;margin-top:2em}.figures{display:grid;grid-template-columns:repeat(auto-fill,"
      "minmax(520px,1fr));gap:1em}figure{margin:0}img{max-width:100%;border:1px solid #eee}figcaption,.files,.top{"
      "font-size:.85em;color:#555}nav ol{columns:2}nav li{overflow-wrap:anywhere}</style></head><body>\n"
      "<h1>DyT suite results</h1>\n<p>Written by <code>dyt run</code>, <code>dyt table</code> and <code>dyt plot</code> from "
      "the folders under this one: one section per experiment (its reference note or table, then its figures, each with "
      "its PDF, SVG, gnuplot script and data).</p>\n"
      "<nav id=\"contents\"><h2>Contents</h2>\n<ol>\n" +
      contents + "</ol></nav>\n" + body + other + "</body></html>\n";
  const fs::path path = out_root / "index.html";
  atomic_write(path, html);
  return path;
}

}  // namespace dyt
