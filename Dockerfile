# The stackops operator image. The same image runs the Jobs stackops creates (database creation,
# keystone registration), so their code is the code the tests run.
#
# Built here with buildah from a Debian base made by debootstrap and tagged under PYTHON_IMAGE's name
# (hack/images/build.py operator); anywhere else `docker build .` takes the image from its registry.
# stackops lives in a virtualenv, which works alike on python:*-slim and on Debian's own python3.
ARG PYTHON_IMAGE=docker.io/library/python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
# the host's CA bundle while building, when it reaches PyPI through a TLS-inspecting proxy (not kept)
ARG PIP_CERT
WORKDIR /src
COPY pyproject.toml README.md ./
COPY operator ./operator
RUN python3 -m venv /build \
 && /build/bin/pip install --no-cache-dir --quiet --upgrade pip \
 && /build/bin/pip wheel --no-cache-dir --quiet --wheel-dir /wheels .

FROM ${PYTHON_IMAGE}
# 65532: the uid stackops Jobs and the operator's pods run as (runAsNonRoot, read-only root filesystem)
RUN useradd --uid 65532 --user-group --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin stackops
COPY --from=build /wheels /wheels
RUN python3 -m venv /opt/stackops \
 && /opt/stackops/bin/pip install --no-cache-dir --quiet --no-index /wheels/*.whl \
 && rm -rf /wheels
ENV PATH=/opt/stackops/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
LABEL org.opencontainers.image.title="stackops" \
      org.opencontainers.image.description="Kubernetes operator that deploys OpenStack the Kolla way"
USER 65532:65532
ENTRYPOINT ["stackops"]
CMD ["operator"]
