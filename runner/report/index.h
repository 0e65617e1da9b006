// results/index.html: every table and figure under a results folder, readable in a browser
// without a server, rewritten by run, table and plot. One section per experiment (a folder with a
// table.md or figures; its reference note <folder>.md first when there is one), a contents list
// at the top; Markdown rendered by md4c (GitHub dialect: tables, links, code).
#pragma once

#include <filesystem>
#include <string>

namespace dyt {

std::filesystem::path write_results_index(const std::filesystem::path& out_root);

// GitHub-flavoured Markdown to HTML (md4c).
std::string markdown_to_html(const std::string& markdown);

}  // namespace dyt
