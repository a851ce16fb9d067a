"""LangGraph's PostgresSaver in its own schema (lg_worker), shared by every job of the process.

The schema is created if missing and ``setup()`` runs under an advisory lock, so two workers
starting together do not race on the migrations.
"""

from __future__ import annotations

import psycopg
from langgraph.checkpoint.postgres import PostgresSaver
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool

SCHEMA = "lg_worker"
_LOCK_ID = 0x6C6B5F6C67  # "lk_lg"


def open_checkpointer(database_url: str, max_size: int = 8) -> tuple[PostgresSaver, ConnectionPool]:
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}")
    pool = ConnectionPool(
        database_url,
        min_size=1,
        max_size=max_size,
        kwargs={
            "autocommit": True,
            "prepare_threshold": 0,
            "row_factory": dict_row,
            "options": f"-c search_path={SCHEMA}",
        },
        # A connection Postgres dropped (a restart) is replaced at checkout, not handed to a
        # checkpoint write that would fail on it.
        check=ConnectionPool.check_connection,
        open=True,
    )
    saver = PostgresSaver(pool)
    with pool.connection() as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (_LOCK_ID,))
        try:
            saver.setup()
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (_LOCK_ID,))
    return saver, pool
