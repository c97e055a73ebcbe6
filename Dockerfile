# Rootwalk in a container: a recursive resolver on port 53 (UDP and TCP), metrics on 9153.
#   podman build -t rootwalk . && podman run -p 53:53/udp -p 53:53/tcp -p 127.0.0.1:9153:9153 rootwalk
#   podman run -p 5300:5300/udp -p 5300:5300/tcp rootwalk lab --listen 0.0.0.0:5300   # the demo lab
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY resolver ./resolver
COPY zones ./zones
RUN python -m venv /opt/rootwalk \
 && /opt/rootwalk/bin/pip install --no-cache-dir .

FROM python:3.11-slim
# Port 53 without root: the interpreter gets CAP_NET_BIND_SERVICE and nothing else.
RUN apt-get update \
 && apt-get install -y --no-install-recommends libcap2-bin \
 && setcap cap_net_bind_service=+ep "$(readlink -f /usr/local/bin/python3.11)" \
 && apt-get purge -y libcap2-bin && apt-get autoremove -y && rm -rf /var/lib/apt/lists/* \
 && useradd --system --no-create-home --uid 10053 rootwalk
COPY --from=build /opt/rootwalk /opt/rootwalk
COPY deploy/container.toml /etc/rootwalk/rootwalk.toml
# Clients on loopback and the private ranges (RFC 1918, RFC 4193, link-local) are answered,
# in every mode (serve and the lab demo); override with -e ROOTWALK_ALLOW_CLIENTS=...
ENV PATH=/opt/rootwalk/bin:$PATH PYTHONUNBUFFERED=1 \
    ROOTWALK_ALLOW_CLIENTS="10.0.0.0/8,172.16.0.0/12,192.168.0.0/16,fc00::/7,fe80::/10"
USER rootwalk
EXPOSE 53/udp 53/tcp 9153/tcp
# localhost. is answered locally (RFC 6761): healthy without the internet.
HEALTHCHECK --interval=30s --timeout=5s --start-period=5s --retries=3 \
  CMD ["rootwalk", "query", "localhost.", "--server", "127.0.0.1:53", "--timeout", "2"]
ENTRYPOINT ["rootwalk"]
CMD ["serve", "--config", "/etc/rootwalk/rootwalk.toml"]
