# Slim, non-root image of the Lablet Resource Manager.
FROM python:3.11-slim AS base
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /app
COPY requirements.lock pyproject.toml README.md ./
RUN pip install --no-cache-dir -r requirements.lock
COPY domain ./domain
COPY projections ./projections
COPY processors ./processors
COPY adapters ./adapters
COPY api ./api
COPY config ./config
RUN pip install --no-cache-dir --no-deps . \
 && useradd --create-home --uid 10001 lrm && mkdir -p /data && chown lrm /data
USER lrm
ENV LRM_HOST=0.0.0.0 LRM_PORT=8000 LRM_DATA_DIR=/data
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
  CMD python -c "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2).status == 200 else 1)"
ENTRYPOINT ["lablet"]
CMD ["serve"]
