#!/usr/bin/env bash
# Idempotent set-up of everything the suite needs on Debian 12:
#   1. Debian packages (compilers, OpenCV, yaml-cpp, CLI11, fmt, GoogleTest, gnuplot, libsndfile,
#      Gloo's headers for c10d, md4c for the results page; chromium and LaTeX for the tests that
#      open that page in a browser and compile the LaTeX tables)
#   2. a project-local Python virtual environment (.venv) holding PyPI's torch==2.11.0, whose
#      libtorch the C++ build links against, plus timm/transformers/safetensors for the golden tests
#      and tensorboard for the test that reads our event files with it.
# Each step is skipped when already satisfied, so `make test` can call it every time (about a second).
# Environment: DYT_VENV (default <repo>/.venv), DYT_SKIP_APT=1, DYT_SKIP_PIP=1, DYT_PYTHON (interpreter).
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
venv=${DYT_VENV:-$repo/.venv}
torch_version=2.11.0
# Pinned versions of the test-only Python packages (never needed by `dyt` at run time).
py_test_pkgs=(timm==1.0.29 transformers safetensors numpy tensorboard==2.21.0)

apt_pkgs=(
  build-essential cmake ninja-build pkg-config git ca-certificates
  libopencv-core-dev libopencv-imgproc-dev libopencv-imgcodecs-dev
  zlib1g-dev libjpeg62-turbo-dev libyaml-cpp-dev libcli11-dev libfmt-dev nlohmann-json3-dev libgtest-dev
  gnuplot-nox libsndfile1-dev libsoxr-dev espeak-ng wamerican sox
  dataset-fashion-mnist
  clang libclang-rt-14-dev patchelf
  libgloo-dev libmd4c-dev libmd4c-html0-dev
  chromium texlive-latex-base texlive-latex-recommended
)

say() { printf '[setup] %s\n' "$*"; }
die() { printf '[setup] error: %s\n' "$*" >&2; exit 1; }

if [[ ${DYT_SKIP_APT:-0} != 1 ]]; then
  missing=()
  for p in "${apt_pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  if ((${#missing[@]})); then
    say "installing Debian packages: ${missing[*]}"
    sudo=""
    if [[ $(id -u) != 0 ]]; then
      command -v sudo >/dev/null || die "need root (or sudo) to install: ${missing[*]}"
      sudo=sudo
    fi
    export DEBIAN_FRONTEND=noninteractive
    # Refresh the package lists only when an install fails on stale ones.
    if ! $sudo apt-get install -y --no-install-recommends "${missing[@]}"; then
      $sudo apt-get update || die "apt-get update failed (no network to the Debian mirror?)"
      $sudo apt-get install -y --no-install-recommends "${missing[@]}" ||
        die "could not install: ${missing[*]}. Install them by hand, or set DYT_SKIP_APT=1 if they are provided otherwise."
    fi
  else
    say "Debian packages: all ${#apt_pkgs[@]} present"
  fi
fi

if [[ ${DYT_SKIP_PIP:-0} != 1 ]]; then
  py=${DYT_PYTHON:-$(command -v python3 || true)}
  [[ -n $py ]] || die "python3 not found; install python3 (with the venv module)"
  if [[ ! -x $venv/bin/python ]]; then
    say "creating virtual environment $venv"
    "$py" -m venv "$venv" || die "python3 -m venv failed; on Debian install python3-venv"
  fi
  vpy=$venv/bin/python
  have=$("$vpy" - <<PY 2>/dev/null || true
import importlib.metadata as m
want = {"torch": "$torch_version"}
ok = True
for name in ["torch", "timm", "transformers", "safetensors", "numpy", "tensorboard"]:
    try:
        v = m.version(name)
    except m.PackageNotFoundError:
        ok = False; break
    if name in want and v.split("+")[0] != want[name]:
        ok = False; break
print("ok" if ok else "missing")
PY
)
  if [[ $have != ok ]]; then
    say "installing torch==$torch_version and test packages into $venv (pip keeps its cache in ~/.cache/pip)"
    "$vpy" -m pip install --disable-pip-version-check "torch==$torch_version" "${py_test_pkgs[@]}" ||
      die "pip install failed; check access to PyPI, or point DYT_VENV at an environment that has torch==$torch_version"
  else
    say "virtual environment: torch $torch_version and test packages present"
  fi
fi
say "done"
