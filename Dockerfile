# The netdoctor probe image: the node agent the probe DaemonSet runs (hostNetwork, read-only
# /host mount, NET_ADMIN + NET_RAW). It reads node state and sends test packets; it never
# changes the node's network configuration.
FROM python:3.11-slim-bookworm

RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      iproute2 iptables nftables conntrack libpcap0.8 dnsmasq-base iputils-ping procps openssh-client \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /src
COPY setup.cfg pyproject.toml README.md ./
COPY k8snetdoctor ./k8snetdoctor
COPY checks ./checks
COPY probes ./probes
COPY reports ./reports
RUN pip install --no-cache-dir . && rm -rf /src

USER root
ENTRYPOINT ["netdoctor"]
CMD ["probe", "collect", "--host-root", "/host"]
