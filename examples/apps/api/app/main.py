"""The journal's main API, as a GardenOS app skeleton.

Health and readiness: /health answers while the process runs (the liveness probe); /ready answers
200 only when PostgreSQL answers through postgres-primary (the readiness probe), so a pod never gets
traffic it cannot serve. One table, a write and a read. Settings come from the environment
(the app's ConfigMap and Secret, as GardenOS renders them); logs are JSON lines on stdout.
"""

import json
import logging
import os
import sys
import time
from contextlib import asynccontextmanager

import psycopg
from fastapi import FastAPI, HTTPException, Response
from psycopg_pool import AsyncConnectionPool
from pydantic import BaseModel, Field


class Settings:
    """Everything the app reads from its environment, checked once at start-up."""

    def __init__(self, env: dict[str, str]) -> None:
        missing = [k for k in ("DATABASE_URL",) if not env.get(k)]
        if missing:
            raise SystemExit(f"missing setting(s): {', '.join(missing)} (the app's Secret: <app>-secrets)")
        self.database_url = env["DATABASE_URL"]
        self.app_name = env.get("APP_NAME", "api")
        self.log_level = env.get("LOG_LEVEL", "INFO").upper()
        self.ready_timeout = float(env.get("READY_TIMEOUT_SECONDS", "2"))
        self.pool_max = int(env.get("DB_POOL_MAX", "5"))


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {"time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)), "level": record.levelname.lower(), "msg": record.getMessage()}
        entry.update(getattr(record, "fields", {}))
        if record.exc_info:
            entry["error"] = self.formatException(record.exc_info)
        return json.dumps(entry)


settings = Settings(dict(os.environ))
handler = logging.StreamHandler(sys.stdout)
handler.setFormatter(JsonFormatter())
log = logging.getLogger(settings.app_name)
log.addHandler(handler)
log.setLevel(settings.log_level)
log.propagate = False

SCHEMA = """
CREATE TABLE IF NOT EXISTS items (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  name text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
  created_at timestamptz NOT NULL DEFAULT now()
)
"""


@asynccontextmanager
async def lifespan(_: FastAPI):
    # open=False + open(wait=False): the app starts (and /health answers) while the database is away.
    pool = AsyncConnectionPool(settings.database_url, min_size=0, max_size=settings.pool_max, open=False, kwargs={"connect_timeout": 3})
    await pool.open(wait=False)
    app.state.pool = pool
    app.state.schema_ready = False
    log.info("started", extra={"fields": {"app": settings.app_name}})
    yield
    await pool.close()


app = FastAPI(title="GardenOS example API", lifespan=lifespan)


async def ensure_schema() -> None:
    if app.state.schema_ready:
        return
    async with app.state.pool.connection() as conn:
        await conn.execute(SCHEMA)
    app.state.schema_ready = True


class ItemIn(BaseModel):
    name: str = Field(min_length=1, max_length=200)


@app.get("/health")
async def health() -> dict:
    return {"status": "ok"}


@app.get("/ready")
async def ready(response: Response) -> dict:
    try:
        async with app.state.pool.connection(timeout=settings.ready_timeout) as conn:
            row = await (await conn.execute("SELECT pg_is_in_recovery()")).fetchone()
        if row[0]:
            raise RuntimeError("connected to a replica, not the primary")
        await ensure_schema()
        return {"status": "ready"}
    except Exception as e:  # any failure means: do not send traffic here
        log.warning("not ready", extra={"fields": {"reason": str(e)[:200]}})
        response.status_code = 503
        return {"status": "not ready", "reason": str(e)[:200]}


@app.post("/items", status_code=201)
async def create_item(item: ItemIn) -> dict:
    await ensure_schema()
    async with app.state.pool.connection() as conn:
        row = await (await conn.execute("INSERT INTO items (name) VALUES (%s) RETURNING id, name, created_at", (item.name,))).fetchone()
    log.info("item created", extra={"fields": {"id": row[0]}})
    return {"id": row[0], "name": row[1], "created_at": row[2].isoformat()}


@app.get("/items/{item_id}")
async def read_item(item_id: int) -> dict:
    await ensure_schema()
    async with app.state.pool.connection() as conn:
        row = await (await conn.execute("SELECT id, name, created_at FROM items WHERE id = %s", (item_id,))).fetchone()
    if row is None:
        raise HTTPException(status_code=404, detail=f"no item {item_id}")
    return {"id": row[0], "name": row[1], "created_at": row[2].isoformat()}


@app.exception_handler(psycopg.OperationalError)
async def database_unavailable(_, e: psycopg.OperationalError):
    from fastapi.responses import JSONResponse

    log.error("database unavailable", extra={"fields": {"reason": str(e)[:200]}})
    return JSONResponse(status_code=503, content={"detail": "database unavailable"})
