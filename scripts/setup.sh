#!/usr/bin/env bash
# Idempotent set-up of everything the tests and the demo need.
#   scripts/setup.sh          -> Debian packages, npm packages, .venv with every extra + test tools
#   scripts/setup.sh --python -> only the virtualenv with the runtime (the demo; no test extras)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

want_system=1
[ "${1:-}" = "--python" ] && want_system=0

if [ "$want_system" = 1 ]; then
  APT_PKGS="openjdk-17-jdk-headless maven libhessian-java zookeeper wrk nginx-light iproute2 redis-server nghttp2-client chromium"
  missing=""
  for p in $APT_PKGS; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
  done
  if [ -n "$missing" ]; then
    echo "[setup] installing Debian packages:$missing"
    SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $missing >/dev/null
  fi
  if [ -f interop/node/package.json ]; then
    stamp=interop/node/node_modules/.tribridge-stamp
    sum=$(cat interop/node/package.json interop/node/package-lock.json 2>/dev/null | sha256sum | cut -c1-16)
    if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$sum" ]; then
      echo "[setup] installing npm packages"
      (cd interop/node && npm ci --no-audit --no-fund --loglevel=error)
      echo "$sum" > "$stamp"
    fi
  fi
fi

if [ ! -x .venv/bin/python ]; then
  echo "[setup] creating .venv"
  python3 -m venv .venv
fi
# the tests get every extra plus the test tools; the demo (--python) the runtime only: the core
# install, HTTP -> Dubbo2 / Triple with the static registry (docs/operations.md, "Install")
extras="all,test"; [ "$want_system" = 1 ] || extras=""
stamp=.venv/.tribridge-stamp
sum=$(sha256sum pyproject.toml | cut -c1-16)
have=$(cat "$stamp" 2>/dev/null || true)
# a test venv serves the demo too: only a missing or older install is (re)installed
if [ "$have" != "$sum all,test" ] && [ "$have" != "$sum $extras" ]; then
  echo "[setup] installing tribridge${extras:+[$extras]} into .venv"
  .venv/bin/pip install -q --upgrade pip >/dev/null
  if [ -n "$extras" ]; then
    TRIBRIDGE_REQUIRE_COMPILED=1 .venv/bin/pip install -q -e ".[$extras]"
  else
    .venv/bin/pip install -q -e .
  fi
  echo "$sum $extras" > "$stamp"
fi
if [ "$want_system" = 0 ]; then
  exit 0  # the demo runs on whatever codecs the install built (compiled, or pure Python)
fi

# ---- compiled codecs -------------------------------------------------------------------------
# setup.py compiles the hot codec modules (codecs/_accel.py: ACCELERATED) with Cython, from the
# same .py files plus their .pxd types, into extension modules beside them.  The tests run every
# codec test on both implementations, so a test run needs them built: rebuilt (in place, only the
# changed modules) whenever a codec source or the build changes; failure to compile is an error
# here (TRIBRIDGE_REQUIRE_COMPILED), while a user's `pip install` without a compiler falls back.
stamp=.venv/.tribridge-codecs-stamp
sum=$(find setup.py codecs -name '*.py' -o -name '*.pxd' | LC_ALL=C sort | xargs cat | sha256sum | cut -c1-16)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$sum" ] || ! ls codecs/hessian2/decoder.*.so >/dev/null 2>&1; then
  echo "[setup] compiling the codecs (Cython)"
  TRIBRIDGE_REQUIRE_COMPILED=1 .venv/bin/python setup.py -q build_ext --inplace >/dev/null
  echo "$sum" > "$stamp"
fi

# ---- Java and Go interop peers ---------------------------------------------------------------
# Apache Dubbo 3.3 and 2.7 providers/consumers for the compatibility matrix (interop/java/dubbo33,
# dubbo27, sharing interop/java/peer), Spring Cloud Netflix Eureka server + client
# (interop/java/eureka), the Java nacos-client probe (interop/java/nacos) and the Go
# nacos-sdk-go / client-go programs (interop/go).  Jars and their dependencies land in each
# module's target/ (gitignored), Go binaries in interop/go/bin; each is rebuilt only when its
# sources change (stamp = hash of the sources), so tests only run `java -cp` and never download.
build_java_go_peers() {
  local mod sum stamp
  for mod in interop/java/dubbo33 interop/java/dubbo27 interop/java/eureka interop/java/nacos; do
    local extra=""  # the Dubbo lines share their sources
    case "$mod" in interop/java/dubbo*) extra=../peer ;; esac
    sum=$(cd "$mod" && find pom.xml src $extra -type f | LC_ALL=C sort | xargs sha256sum \
          | sha256sum | cut -c1-16)
    stamp=$mod/target/.tribridge-stamp
    if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$sum" ] || [ ! -d "$mod/target/lib" ]; then
      echo "[setup] building $mod (maven)"
      rm -rf "$mod/target/lib"
      if ! (cd "$mod" && mvn -q -B -Dstyle.color=never -DskipTests package \
              dependency:copy-dependencies -DoutputDirectory=target/lib) >/tmp/tribridge-mvn.log 2>&1; then
        cat /tmp/tribridge-mvn.log >&2
        echo "[setup] building $mod failed" >&2
        return 1
      fi
      echo "$sum" > "$stamp"
    fi
  done
  command -v go >/dev/null || { echo "[setup] go (1.26) is needed for interop/go" >&2; return 1; }
  sum=$(cd interop/go && find go.mod go.sum cmd -type f | LC_ALL=C sort | xargs sha256sum | sha256sum | cut -c1-16)
  stamp=interop/go/bin/.tribridge-stamp
  if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$sum" ]; then
    echo "[setup] building interop/go (go build)"
    mkdir -p interop/go/bin
    (cd interop/go && go build -mod=readonly -o bin/ ./cmd/...)
    echo "$sum" > "$stamp"
  fi
}
if [ "$want_system" = 1 ]; then
  build_java_go_peers
fi
