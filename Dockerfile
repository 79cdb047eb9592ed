# tribridge gateway image: slim Python, non-root, config from /etc/tribridge (a ConfigMap in k8s).
#   docker build -t tribridge .
#   docker run -p 8080:8080 -v $PWD/gateway.yaml:/etc/tribridge/gateway.yaml tribridge
# The command is the README's: tribridge run -c FILE [--workers N]  (docs/operations.md)
#
# Two stages: the builder has gcc and Cython and builds wheels (tribridge with its compiled
# codecs, setup.py; TRIBRIDGE_REQUIRE_COMPILED=1 makes a failed compile a failed build, never
# a silently pure-Python image) plus every dependency; the runtime stage installs those wheels
# offline (a BuildKit bind mount: the wheels never become a layer) and carries no compiler, no
# build tools and no source tree; it refuses to build unless the codecs it got are compiled.

FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN apt-get update \
    && apt-get install -y --no-install-recommends gcc libc6-dev \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY pyproject.toml setup.py README.md LICENSE ./
COPY gateway/ gateway/
COPY codecs/ codecs/
COPY registries/ registries/
COPY interop/ interop/
# the extras the runtime stage installs (their wheels are built here too)
ARG TRIBRIDGE_EXTRAS=all
# -g0 / -s: no debug info, stripped (the codec extensions: ~1.9 MB instead of ~10 MB)
RUN CFLAGS=-g0 LDFLAGS=-s TRIBRIDGE_REQUIRE_COMPILED=1 pip wheel --wheel-dir /wheels ".[${TRIBRIDGE_EXTRAS}]"

FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

RUN useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin tribridge

# every registry client and feature by default; --build-arg TRIBRIDGE_EXTRAS=zookeeper for a
# smaller image (docs/operations.md, "Install")
ARG TRIBRIDGE_EXTRAS=all
RUN --mount=type=bind,from=build,source=/wheels,target=/wheels \
    pip install --no-index --find-links /wheels "tribridge[${TRIBRIDGE_EXTRAS}]" \
    && python -c "from tribridge.codecs import dubbo, hessian2; \
assert (hessian2.IMPLEMENTATION, dubbo.IMPLEMENTATION) == ('compiled', 'compiled')"

WORKDIR /
USER 10001:10001
EXPOSE 8080 9901
ENTRYPOINT ["tribridge"]
# a container's own network namespace: listen on all of its interfaces, whatever the config says
CMD ["run", "-c", "/etc/tribridge/gateway.yaml", "--host", "0.0.0.0"]
