# syntax=docker/dockerfile:1
# The action image: the pinned BuildKit taken from moby/buildkit (its userland, buildkitd, runc and
# the QEMU emulators of the platforms people build), with a static secure-docker-images binary and
# buildx. The runner pulls this one image; a run starts its builder from it
# (src/engine/own_buildkit.rs), so nothing else is pulled, and the label tells the binary which
# BuildKit it carries. No docker CLI (10 MB of every pull): buildx runs on its own, and the binary
# asks the daemon through its Engine API for the rest (src/engine/containers.rs).
#
# The binary is cross-compiled on the build platform for each target (cargo-zigbuild: zig links
# musl and compiles ring's C for either architecture), so an arm64 image costs no emulation.
#   docker buildx build --platform linux/amd64,linux/arm64 -t secure-docker-images .

ARG RUST_IMAGE=rust:1.91-bookworm@sha256:c1e5f19e773b7878c3f7a805dd00a495e747acbdc76fb2337a4ebf0418896b33
# The buildx plugin: the release src/pins.rs pins (a test keeps the two equal), the one the
# real-engine suite runs.
ARG BUILDX_IMAGE=docker/buildx-bin:0.36.1
# The BuildKit the image carries and runs a user's build on: the release src/pins.rs pins.
ARG BUILDKIT_IMAGE=moby/buildkit:v0.32.2

FROM ${BUILDX_IMAGE} AS buildx

FROM ${BUILDKIT_IMAGE} AS buildkit

# The build platform's work: the binary, and the engine's Go binaries stripped.
FROM --platform=$BUILDPLATFORM ${RUST_IMAGE} AS build
# Debian's pip is only the installer of the two pinned wheels below; binutils strips either
# architecture's binaries.
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3-pip binutils-x86-64-linux-gnu binutils-aarch64-linux-gnu \
 && rm -rf /var/lib/apt/lists/* \
 && pip3 install --no-cache-dir --break-system-packages ziglang==0.13.0.post1 cargo-zigbuild==0.19.8 \
 && rustup target add x86_64-unknown-linux-musl aarch64-unknown-linux-musl
ARG TARGETARCH
# buildkitd and runc ship with their symbol tables and DWARF, which nothing in a run reads (a Go
# panic's trace comes from the pclntab, which stays): stripped, buildkitd's compressed layer is
# half as big (37 -> 19 MB). buildx-bin's is built stripped already.
COPY --from=buildkit /usr/bin/buildkitd /usr/bin/buildkit-runc /engine/
RUN case "${TARGETARCH}" in \
      amd64) strip=x86_64-linux-gnu-strip ;; \
      arm64) strip=aarch64-linux-gnu-strip ;; \
      *) echo "unsupported architecture ${TARGETARCH}" >&2; exit 1 ;; \
    esac \
 && "${strip}" --strip-all /engine/buildkitd /engine/buildkit-runc
WORKDIR /src
COPY Cargo.toml Cargo.lock rustfmt.toml ./
COPY src ./src
# Cargo.toml names the test-only fake docker binary; its source must exist to read the manifest.
COPY tests/fake_docker ./tests/fake_docker
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target,id=sdi-target-${TARGETARCH} \
    case "${TARGETARCH}" in \
      amd64) target=x86_64-unknown-linux-musl ;; \
      arm64) target=aarch64-unknown-linux-musl ;; \
      *) echo "unsupported architecture ${TARGETARCH}" >&2; exit 1 ;; \
    esac \
 && cargo zigbuild --locked --profile dist --bin secure-docker-images --target "${target}" \
 && cp "target/${target}/dist/secure-docker-images" /secure-docker-images

# moby/buildkit's userland (Alpine with git, ssh, pigz, xz, unshare for its entrypoint) without
# what a run never starts: buildctl (buildx dials BuildKit's socket itself, no `buildctl
# dial-stdio`), the CNI plugins (buildkitd's default network is the host's), the helper scripts.
# (Taking the whole filesystem is the point: it is the pinned image's, minus what is named.)
FROM scratch
# hadolint ignore=DL3067
COPY --from=buildkit --exclude=usr/bin/buildctl* --exclude=usr/bin/buildkit* / /
# BuildKit itself (stripped), and the emulators of amd64, arm64 and arm/v6/v7 (each image lacks
# its own architecture's): a platform of another architecture (riscv64, ppc64le, s390x, 386) gets
# QEMU registered on the host at run time, as buildx's own builders do (src/pins.rs keeps the
# list).
COPY --from=build /engine/buildkitd /engine/buildkit-runc /usr/bin/
COPY --from=buildkit /usr/bin/buildkitd-entrypoint /usr/bin/buildkit-qemu-aarch64* /usr/bin/buildkit-qemu-arm* \
     /usr/bin/buildkit-qemu-x86_64* /usr/bin/
# moby/buildkit's environment: Alpine's PATH, and buildkitd's cgroup v2 setup.
ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin BUILDKIT_SETUP_CGROUPV2_ROOT=1
LABEL dev.sdi.buildkit.version=0.32.2
# The CA bundle the binary's registry clients read, whatever the base carries.
COPY --from=build /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY --from=buildx /buildx /usr/local/bin/buildx
COPY --from=build /secure-docker-images /usr/local/bin/secure-docker-images
ENTRYPOINT ["/usr/local/bin/secure-docker-images"]
