# The project's own emulator (moto's server with the fixes the suite runs on: the linear Kinesis
# shard, resharding, throttling, DynamoDB transactions), for docker-compose.yml's `emulator`.
# Installs exactly uv.lock's `local` extra, as `make` does: no image tag decides what runs.
FROM python:3.11-slim
WORKDIR /app
COPY .ci/uv.txt .ci/uv.txt
RUN pip install --quiet --no-cache-dir --disable-pip-version-check --require-hashes -r .ci/uv.txt
COPY pyproject.toml uv.lock README.md ./
COPY domain domain
COPY adapters adapters
COPY streams streams
COPY entrypoints entrypoints
COPY local local
RUN UV_PYTHON_DOWNLOADS=never uv sync --quiet --frozen --extra local --no-editable
EXPOSE 4566
# 0.0.0.0 inside the container only: compose publishes the port on the host's 127.0.0.1.
CMD ["/app/.venv/bin/campaign-workers", "emulator", "--host", "0.0.0.0", "--port", "4566", "--h2c-port", "0"]
