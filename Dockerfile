# Small runtime image: slim Python, dependencies installed in a build stage, a non-root user,
# the SQLite database on a volume. Build: docker build -t portrait-bot .
# Run:   docker run -d --name portrait-bot -e TELEGRAM_BOT_TOKEN=... -e VOLC_ACCESSKEY=... \
#            -e VOLC_SECRETKEY=... -e ADMIN_IDS=... -v portrait-data:/data portrait-bot
# Several processes (webhook receivers and a worker): docker-compose.yml.
FROM python:3.11-slim AS build
WORKDIR /src
# The dependencies first, exactly as locked (versions and hashes): a change to the source does not
# reinstall them, and every build installs the same files.
COPY requirements/runtime.lock ./requirements/
RUN pip install --no-cache-dir --prefix=/install --require-hashes -r requirements/runtime.lock
# Then the package itself, without touching the dependencies.
COPY pyproject.toml README.md ./
COPY api_client ./api_client
COPY storage ./storage
COPY bot ./bot
RUN pip install --no-cache-dir --prefix=/install --no-deps .

FROM python:3.11-slim
ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PORTRAIT_BOT_DB=/data/portrait-bot.db
COPY --from=build /install /usr/local
RUN useradd --create-home --uid 10001 portrait \
    && mkdir -p /data && chown portrait:portrait /data
USER portrait
VOLUME ["/data"]
# The webhook (WEBHOOK_LISTEN) and, for polling or worker processes, METRICS_PORT.
EXPOSE 8080
# The health check opens the database read-only (mode=ro: it never migrates, writes or checkpoints)
# and fails when the file is unreadable, its schema is not this image's (not migrated yet, or newer),
# its quota time zone is not QUOTA_TIMEZONE, or the balances disagree with the ledger.
# (A webhook process also answers GET /healthz and /readyz on its port, for orchestrators that probe HTTP.)
HEALTHCHECK --interval=60s --timeout=10s --start-period=20s --retries=3 \
    CMD ["portrait-bot", "admin", "health"]
ENTRYPOINT ["portrait-bot"]
CMD ["run"]
