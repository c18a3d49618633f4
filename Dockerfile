# ekklesia node image: `ekklesia start` on a home kept in a volume.
#
#   docker build -t ekklesia .
#   docker run --rm -v ekk:/home/ekklesia/.ekklesia -v "$PWD/genesis.json:/genesis.json:ro" ekklesia \
#       init --moniker my-node --genesis /genesis.json --peer /dns4/seed.example.org/tcp/26656/p2p/12D3KooW…
#   docker run -d --name ekk -v ekk:/home/ekklesia/.ekklesia -p 26656:26656 -p 127.0.0.1:26657:26657 ekklesia
#
# docs/deploy.md has the details (ports, keys, a 4-validator docker-compose testnet).

# ---- build: wheels for ekklesia and its dependencies (fastecdsa and, on some
# platforms, plyvel compile against GMP and LevelDB)
FROM python:3.11-slim AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends build-essential libgmp-dev libleveldb-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY pyproject.toml README.md ./
COPY protocol ./protocol
COPY node ./node
COPY simulations ./simulations
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

# ---- runtime: the same as `pip install .`, from those wheels
FROM python:3.11-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends libgmp10 libleveldb1d \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir --no-index --find-links /wheels ekklesia \
 && rm -rf /wheels

# An unprivileged user owns the home; the volume is created from this directory, so
# a fresh named volume gets the right owner and mode.
RUN useradd --uid 1000 --user-group --create-home ekklesia \
 && install -d -m 0700 -o ekklesia -g ekklesia /home/ekklesia/.ekklesia
USER ekklesia
ENV EKKLESIA_HOME=/home/ekklesia/.ekklesia \
    # inside the container's own network namespace: listen on every interface; which
    # ports the host exposes is decided by `-p` / `ports:` (publish the API on 127.0.0.1 only)
    EKKLESIA_P2P_LISTEN=/ip4/0.0.0.0/tcp/26656 \
    EKKLESIA_API_LISTEN=0.0.0.0:26657 \
    PYTHONUNBUFFERED=1
VOLUME ["/home/ekklesia/.ekklesia"]
WORKDIR /home/ekklesia

# 26656: libp2p (peers), 26657: HTTP API and /metrics
EXPOSE 26656 26657
# stopped with SIGTERM: the node shuts down cleanly
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
    CMD ["ekklesia", "status", "--node", "http://127.0.0.1:26657"]
ENTRYPOINT ["ekklesia"]
CMD ["start"]
