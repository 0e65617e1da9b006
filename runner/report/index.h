// results/index.html: every table and figure under a results folder, readable in a browser
// without a server (tables from their Markdown, figures as PNG), rewritten by run, table and plot.
#pragma once

#include <filesystem>

namespace dyt {

std::filesystem::path write_results_index(const std::filesystem::path& out_root);

}  // namespace dyt
