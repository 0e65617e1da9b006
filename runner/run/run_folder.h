// The run folder contract: what one run (variant x seed [x stage]) of an experiment leaves in
// <out>/<experiment>/<variant>/seed<k>[/<stage>]/, in one place. Every reader and writer of a
// run's files names them through RunFolder, so the layout is documented and changed here only.
#pragma once

#include <filesystem>
#include <string>

namespace dyt {

struct RunFolder {
  std::filesystem::path dir;

  std::filesystem::path config() const { return dir / "config.yaml"; }      // the resolved config
  std::filesystem::path env() const { return dir / "env.json"; }            // versions, device, argv
  std::filesystem::path metrics() const { return dir / "metrics.jsonl"; }   // one JSON object a line
  std::filesystem::path summary() const { return dir / "summary.json"; }    // status and final metrics
  std::filesystem::path weights() const { return dir / "model.safetensors"; }
  std::filesystem::path ema_weights() const { return dir / "model_ema.safetensors"; }
  std::filesystem::path model_config() const { return dir / "config.json"; }  // architecture in timm's terms
  std::filesystem::path checkpoints() const { return dir / "checkpoints"; }  // step_<N>.safetensors
  std::filesystem::path lock() const { return dir / ".lock"; }              // flock while a process runs it
  std::filesystem::path log() const { return dir / "log.txt"; }             // what the terminal showed
  std::filesystem::path tensorboard() const { return dir / "tensorboard"; } // event files (tensorboard --logdir)
  // A sibling stage's folder (MAE fine-tuning starts from <seed>/pretrain/).
  RunFolder stage(const std::string& name) const { return {dir.parent_path() / name}; }

  // finished | diverged | interrupted (summary.json's status), running (a folder without a
  // summary), or missing (no folder).
  std::string status() const;
};

}  // namespace dyt
