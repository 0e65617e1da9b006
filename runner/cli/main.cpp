// dyt: the suite's one binary. Subcommands: list, config, model, run, table, eval, plot, env, data, bench.
// See runner/commands.h for the exit statuses.
#include <c10/util/Exception.h>

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <malloc.h>

#include <csignal>
#include <cstdio>
#include <yaml-cpp/yaml.h>

#include "core/cpu_allocator.h"
#include "core/distributed.h"
#include "datasets/dataset.h"
#include "runner/cli/commands.h"
#include "runner/experiment/config.h"
#include "core/io.h"

namespace {
// In a data-parallel job a collective fails on every rank when one rank dies: say which rank this
// is, so that the first error in the job's log can be told from the echoes.
std::string rank_hint() {
  try {
    const dyt::DistEnv e = dyt::read_dist_env();
    if (!e.distributed()) return "";
    return fmt::format("(rank {} of {}: when another rank failed first, its error above is the cause; rerun the same "
                       "command to resume from the last checkpoint)\n",
                       e.rank, e.world);
  } catch (...) {
    return "";
  }
}
}  // namespace

int main(int argc, char** argv) {
  using namespace dyt;
  // Keep freed activation memory in the heap: by default glibc returns every block above 128 KiB
  // to the kernel, so each training step re-faults (and re-zeroes) its activations' pages, which
  // showed up as half of all CPU time being spent in the kernel. Never trim the heap's top either
  // (-1): with a 1 GiB threshold, freeing two 512 MiB tensors gave the memory back and the next
  // step faulted it in again (`dyt bench norm` at 32768x4096 timed the page faults, not the copy).
  mallopt(M_MMAP_THRESHOLD, 1 << 30);
  mallopt(M_TRIM_THRESHOLD, -1);
  // Tensors of 1 MiB and more come from a cache of 2 MiB-aligned mappings (core/cpu_allocator.h):
  // once a size has been allocated and freed, the next tensor of that size faults no pages.
  install_cpu_caching_allocator();
  // Past a file-size limit, write() should fail with EFBIG (reported as a full disk, exit 4)
  // instead of the process being killed.
  std::signal(SIGXFSZ, SIG_IGN);
  CLI::App app{"dyt: Dynamic Tanh vs normalization layers in Transformers - experiments, tables, benchmarks"};
  app.require_subcommand(1);
  app.set_version_flag("--version", std::string("dyt 0.1"));
  std::vector<std::string> args(argv, argv + argc);

  std::string list_what;
  auto* list = app.add_subcommand("list", "list experiments, models, norms, datasets, tasks, or config keys");
  list->add_option("what", list_what, "experiments | models | norms | datasets | tasks | keys (default: all but keys)");
  bool list_markdown = false;
  list->add_flag("--markdown", list_markdown, "keys as Markdown tables (docs/config_keys.md)");

  std::string exp;
  std::vector<std::string> sets, variants;
  auto* config = app.add_subcommand("config", "print the fully resolved YAML of an experiment's runs");
  config->add_option("experiment", exp, "experiment name (see dyt list experiments) or path to a .yaml")->required();
  config->add_option("--set", sets, "override a key, e.g. --set optim.lr=1e-3 (repeatable)");
  config->add_option("--variants", variants, "only these variants (comma separated)")->delimiter(',');

  std::string preset;
  auto* model = app.add_subcommand("model", "print a model preset's architecture and parameter count");
  model->add_option("preset", preset, "preset name (configs/models/NAME.yaml) or path")->required();
  model->add_option("--set", sets, "override a model key, e.g. --set norm.type=dyt");

  RunArgs ra;
  auto* run = app.add_subcommand("run", "run an experiment: every variant x seed, then its table");
  run->add_option("experiment", ra.experiment, "experiment name or path to a .yaml")->required();
  run->add_option("--set", ra.sets, "override a key for every run, e.g. --set schedule.epochs=2 (repeatable)");
  run->add_option("--variants", ra.variants, "only these variants (comma separated)")->delimiter(',');
  run->add_option("--seeds", ra.seeds, "these seeds instead of the config's (comma separated)")->delimiter(',');
  run->add_option("--device", ra.device, "cpu | cuda | auto (default: the config's run.device)")
      ->check(CLI::IsMember({"cpu", "cuda", "auto"}));
  run->add_option("--out", ra.out, "results root (default: <suite>/results)");
  run->add_option("--max-steps", ra.max_steps, "stop each run after N optimizer steps (train.max_steps)")->check(CLI::NonNegativeNumber);
  run->add_option("--threads", ra.threads, "CPU threads (run.threads)")->check(CLI::NonNegativeNumber);
  run->add_flag("--force", ra.force, "discard existing results whose config differs, and rerun them");
  run->add_option("--wait", ra.wait_s, "wait up to S seconds for runs another process holds (default: skip them)");
  run->add_flag("--spread", ra.spread,
                "under torchrun/srun: one run per process (each on cuda:LOCAL_RANK, sharing the sweep through the run "
                "locks) instead of every run over all processes");
  run->add_option("--dist-timeout", ra.dist_timeout_s,
                  "data-parallel jobs: seconds to wait for the other ranks (start, collectives; default 1800)")
      ->check(CLI::PositiveNumber);

  std::vector<std::string> table_exps;
  std::string table_out;
  bool table_paper = false;
  auto* table = app.add_subcommand("table", "regenerate comparison tables from finished runs (Markdown, CSV, LaTeX)");
  table->add_option("experiments", table_exps, "experiment names");
  table->add_flag("--paper", table_paper, "also the paper's Tables 1, 2, 5, 7, 8 and efficiency table with our counterparts");
  table->add_option("--out", table_out, "results root (default: <suite>/results)");

  EvalArgs ea;
  auto* eval = app.add_subcommand("eval", "evaluate a checkpoint without training: a run folder, or a .safetensors with "
                                          "config.json beside it (ours or timm's hub layout)");
  eval->add_option("checkpoint", ea.checkpoint, "run folder or .safetensors file")->required();
  eval->add_option("--set", ea.sets, "override a key, e.g. --set data.dataset=image_folder --set data.root=DIR (repeatable)");
  eval->add_flag("--ema", ea.ema, "a run folder's EMA weights (model_ema.safetensors)");
  eval->add_option("--device", ea.device, "cpu | cuda | auto")->check(CLI::IsMember({"cpu", "cuda", "auto"}));
  eval->add_option("--threads", ea.threads, "CPU threads (default: all cores)");
  eval->add_option("--json", ea.json_out, "also write the results to this JSON file");

  std::vector<std::string> plot_exps;
  std::string plot_out;
  auto* plot = app.add_subcommand("plot", "draw an experiment's curves and analysis figures (gnuplot PNG + SVG + script)");
  plot->add_option("experiments", plot_exps, "experiment names")->required();
  plot->add_option("--out", plot_out, "results root (default: <suite>/results)");

  auto* env = app.add_subcommand("env", "LibTorch build, devices, BLAS, threads and a measured matmul rate");

  auto* data = app.add_subcommand("data", "make data sets: a synthesised speech corpus, manifests for an audio tree");
  data->require_subcommand(1);
  SpeechArgs sa;
  auto* speech = data->add_subcommand("speech", "synthesise a speech corpus with espeak-ng (16 kHz WAV + manifests)");
  speech->add_option("--out", sa.out, "output folder")->required();
  speech->add_option("--hours", sa.hours, "hours of speech")->check(CLI::PositiveNumber);
  speech->add_option("--seed", sa.seed, "seed (the corpus is a function of it)");
  speech->add_option("--jobs", sa.jobs, "parallel espeak-ng processes (default: all cores)");
  speech->add_option("--valid-percent", sa.valid_percent, "percent of utterances in valid.tsv (default 5)");
  speech->add_option("--words", sa.words, "word list to draw sentences from (default /usr/share/dict/words)");
  ManifestArgs ma;
  auto* manifest = data->add_subcommand("manifest", "write fairseq train/valid manifests for a folder of audio (LibriSpeech layout)");
  manifest->add_option("--root", ma.root, "folder to scan")->required();
  manifest->add_option("--out", ma.out, "folder for train.tsv and valid.tsv")->required();
  manifest->add_option("--ext", ma.ext, "audio file extension (default flac)");
  manifest->add_option("--valid-percent", ma.valid_percent, "percent of files in valid.tsv (default 1)");
  manifest->add_option("--seed", ma.seed, "seed of the split");

  auto* bench = app.add_subcommand("bench", "benchmarks (norm layers, whole models, data pipeline)");
  bench->require_subcommand(1);
  BenchNormArgs bn;
  auto* bnorm = bench->add_subcommand("norm", "time copy, LayerNorm, RMSNorm, DyT (aten and fused), fwd and fwd+bwd");
  bnorm->add_option("--device", bn.device, "cpu | cuda")->check(CLI::IsMember({"cpu", "cuda"}));
  bnorm->add_option("--dtype", bn.dtype, "fp32 | bf16")->check(CLI::IsMember({"fp32", "bf16"}));
  bnorm->add_option("--shape", bn.shapes, "TOKENSxCHANNELS, repeatable (default: 12608x384 50432x768 32768x4096)");
  bnorm->add_option("--threads", bn.threads, "CPU threads (default: all)");
  bnorm->add_option("--repeats", bn.repeats, "timed repeats per case (default: device-dependent)");
  bnorm->add_option("--warmup", bn.warmup, "untimed warm-up runs per case");
  bnorm->add_option("--csv", bn.csv, "also write the results as CSV to this file");
  bnorm->add_flag("!--no-flush", bn.flush, "do not flush caches between repeats");
  bnorm->add_option("--only", bn.only, "cases to time, comma-separated LAYER or LAYER/IMPL, e.g. layernorm,dyt/fused "
                                       "(the copy is always timed)")->delimiter(',');
  BenchModelArgs bm;
  auto* bmodel = bench->add_subcommand("model", "the paper's efficiency table for our models: norm layers alone and whole model");
  bmodel->add_option("--device", bm.device, "cpu | cuda")->check(CLI::IsMember({"cpu", "cuda"}));
  bmodel->add_option("--dtype", bm.dtype, "fp32 | bf16")->check(CLI::IsMember({"fp32", "bf16"}));
  bmodel->add_option("--model", bm.models, "vit_b16 and/or llama7b (default: both)")->delimiter(',');
  bmodel->add_option("--batch", bm.batch, "ViT batch (default: 256 on CUDA, 8 on CPU)");
  bmodel->add_option("--layers", bm.layers, "LLaMA-shaped layers (default: 32 on CUDA, 2 on CPU)");
  bmodel->add_option("--tokens", bm.tokens, "LLaMA sequence length (default: 4096 on CUDA, 512 on CPU)");
  bmodel->add_option("--repeats", bm.repeats, "timed repeats");
  bmodel->add_option("--threads", bm.threads, "CPU threads");
  bmodel->add_option("--out-dir", bm.out_dir, "folder for the CSV and Markdown (default: results/bench)");

  BenchTrainArgs bt;
  auto* btrain = bench->add_subcommand("train", "training throughput (images/s) and peak GPU memory of a model preset, per norm");
  btrain->add_option("--device", bt.device, "cpu | cuda")->check(CLI::IsMember({"cpu", "cuda"}));
  btrain->add_option("--dtype", bt.dtype, "bf16 (autocast) | fp32")->check(CLI::IsMember({"fp32", "bf16"}));
  btrain->add_option("--model", bt.model, "an image-classifier preset (default vit_b16; `dyt list` shows them)");
  btrain->add_option("--norm", bt.norms, "norm types, repeatable or comma-separated; TYPE:IMPL picks the DyT "
                                         "implementation, e.g. dyt:aten (default: layernorm,dyt)")->delimiter(',');
  btrain->add_option("--batch", bt.batch, "batch (default: 256 on CUDA, 8 on CPU)");
  btrain->add_option("--steps", bt.steps, "timed steps (default: 30 on CUDA, 3 on CPU)");
  btrain->add_option("--warmup", bt.warmup, "untimed steps first (default: 10 on CUDA, 1 on CPU)");
  btrain->add_option("--threads", bt.threads, "CPU threads");
  btrain->add_option("--out-dir", bt.out_dir, "folder for the CSV and Markdown (default: results/bench)");
  btrain->add_option("--profile", bt.profile_dir, "also write a Kineto trace (Chrome JSON) of 3 steps per norm to this folder");

  BenchDdpArgs bd;
  auto* bddp = bench->add_subcommand(
      "ddp", "data-parallel step time under torchrun: N processes at total batch B vs 1 process at B, all-reduce broken out");
  bddp->add_option("--model", bd.model, "an image-classifier preset (default vit_fmnist)");
  bddp->add_option("--set", bd.sets, "override a model key of the preset, e.g. --set embed_dim=192 (repeatable)");
  bddp->add_option("--norm", bd.norm, "norm type (default dyt)");
  bddp->add_option("--batch", bd.batch, "total batch over all processes (default 64)");
  bddp->add_option("--steps", bd.steps, "timed steps per measurement (default 20)");
  bddp->add_option("--warmup", bd.warmup, "untimed steps first (default 3)");
  bddp->add_option("--threads", bd.threads, "CPU threads per process (default: cores / processes on the node)");
  bddp->add_option("--out-dir", bd.out_dir, "folder for the Markdown and CSV (default: results/bench)");

  BenchDataArgs bdata;
  auto* bdat = bench->add_subcommand(
      "data", "images/s of the ImageNet input pipeline (decode + transform), the suite's loader beside timm's");
  bdat->add_option("--tree", bdata.tree, "image tree with train/ and val/ (e.g. from scripts/imagenet_like.py)")->required();
  bdat->add_option("--split", bdata.splits, "train and/or val (default both)");
  bdat->add_option("--workers", bdata.workers, "loader worker counts to time (default: 1 and all cores)");
  bdat->add_option("--images", bdata.images, "images timed per measurement, after the first batch (default 2048: shorter rows vary by +-25 % on a busy machine)");
  bdat->add_option("--batch", bdata.batch, "batch size (default 32)");
  bdat->add_option("--size", bdata.size, "crop size (default 224)");
  bdat->add_option("--python", bdata.python, "Python with timm for the side-by-side run (default <suite>/.venv/bin/python; 'none' skips it)");
  bdat->add_option("--out-dir", bdata.out_dir, "folder for the Markdown and CSV (default: results/bench)");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int rc = app.exit(e);
    return rc == 0 ? 0 : 2;
  }

  try {
    if (*list) return cmd_list(list_what, list_markdown);
    if (*config) return cmd_config(exp, sets, variants);
    if (*model) return cmd_model(preset, sets);
    if (*run) {
      ra.argv = args;
      return cmd_run(ra);
    }
    if (*table) return cmd_table(table_exps, table_out, table_paper);
    if (*plot) return cmd_plot(plot_exps, plot_out);
    if (*eval) return cmd_eval(ea);
    if (*env) return cmd_env(args);
    if (*speech) return cmd_data_speech(sa);
    if (*manifest) return cmd_data_manifest(ma);
    if (*bnorm) return cmd_bench_norm(bn);
    if (*bmodel) return cmd_bench_model(bm);
    if (*btrain) return cmd_bench_train(bt);
    if (*bddp) return cmd_bench_ddp(bd);
    if (*bdat) return cmd_bench_data(bdata);
  } catch (const ConfigError& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return 2;
  } catch (const DataError& e) {
    std::fprintf(stderr, "data error: %s\n", e.what());
    return 3;
  } catch (const IoError& e) {
    std::fprintf(stderr, "file error: %s\n", e.what());
    return 4;
  } catch (const YAML::Exception& e) {
    std::fprintf(stderr, "config error: %s\n", e.what());
    return 2;
  } catch (const std::invalid_argument& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 2;
  } catch (const c10::Error& e) {
    std::fprintf(stderr, "error: %s\n%s", e.what_without_backtrace(), rank_hint().c_str());
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n%s", e.what(), rank_hint().c_str());
    return 1;
  }
  return 0;
}
