# tribridge gateway image: slim Python, non-root, config from /etc/tribridge (a ConfigMap in k8s).
#   docker build -t tribridge .
#   docker run -p 8080:8080 -v $PWD/gateway.yaml:/etc/tribridge/gateway.yaml tribridge
# The command is the README's: tribridge run -c FILE [--workers N]  (docs/operations.md)
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

RUN useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin tribridge

WORKDIR /src
COPY pyproject.toml README.md LICENSE ./
COPY gateway/ gateway/
COPY codecs/ codecs/
COPY registries/ registries/
COPY interop/ interop/
# every registry client and feature by default; --build-arg TRIBRIDGE_EXTRAS=zookeeper for a
# smaller image (docs/operations.md, "Install")
ARG TRIBRIDGE_EXTRAS=all
RUN pip install ".[${TRIBRIDGE_EXTRAS}]" && rm -rf /src

WORKDIR /
USER 10001:10001
EXPOSE 8080 9901
ENTRYPOINT ["tribridge"]
# a container's own network namespace: listen on all of its interfaces, whatever the config says
CMD ["run", "-c", "/etc/tribridge/gateway.yaml", "--host", "0.0.0.0"]
