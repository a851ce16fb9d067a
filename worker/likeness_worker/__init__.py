"""Likeness worker: the GPU plane.

The bridge consumes job commands from Redis Streams, runs each job's task DAG (LangGraph,
checkpointed in Postgres) and dispatches every step to a Dramatiq actor on the queue of the
device its engine needs. Results go back to the api on the durable ``events`` stream.
"""
