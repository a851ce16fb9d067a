"""LangGraph's PostgresSaver in its own schema (lg_worker), shared by every job of the process.

The schema is created if missing and ``setup()`` runs under an advisory lock, so two workers
starting together do not race on the migrations.
"""

from __future__ import annotations

import time

import psycopg
from langgraph.checkpoint.postgres import PostgresSaver
from psycopg.rows import DictRow, dict_row
from psycopg_pool import ConnectionPool

SCHEMA = "lg_worker"
_LOCK_ID = 0x6C6B5F6C67  # "lk_lg"
IDLE_IN_TRANSACTION_MS = 10_000


def open_checkpointer(
    database_url: str, max_size: int = 8
) -> tuple[PostgresSaver, ConnectionPool[psycopg.Connection[DictRow]]]:
    with psycopg.connect(database_url, autocommit=True) as setup_conn:
        setup_conn.execute(f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}")
    # The connections make dict rows (row_factory below), as PostgresSaver wants them.
    pool: ConnectionPool[psycopg.Connection[DictRow]] = ConnectionPool(
        database_url,
        min_size=1,
        max_size=max_size,
        kwargs={
            "autocommit": True,
            "prepare_threshold": 0,
            "row_factory": dict_row,
            # A worker frozen in the middle of a checkpoint write (SIGSTOP, a VM pause) holds
            # its transaction's row locks, and the worker that takes its job over would wait on
            # them until it wakes up: Postgres ends such a transaction after 10 s instead.
            "options": f"-c search_path={SCHEMA} -c idle_in_transaction_session_timeout={IDLE_IN_TRANSACTION_MS}",
        },
        # A connection Postgres dropped (a restart) is replaced at checkout, not handed to a
        # checkpoint write that would fail on it.
        check=ConnectionPool.check_connection,
        open=True,
    )
    saver = PostgresSaver(pool)
    with pool.connection() as conn:
        # Polled, not a blocking pg_advisory_lock: setup() runs CREATE INDEX CONCURRENTLY, which
        # waits for every running statement to end, a blocked lock wait of the other worker
        # included; a deadlock Postgres does not see.
        while True:
            row = conn.execute("SELECT pg_try_advisory_lock(%s) AS locked", (_LOCK_ID,)).fetchone()
            assert row is not None  # a SELECT without FROM returns one row
            if row["locked"]:
                break
            time.sleep(0.1)
        try:
            saver.setup()
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (_LOCK_ID,))
    return saver, pool
