# Generated from packages/contracts/schema/*.json by worker/scripts/generate_contracts.py.
# Do not edit: change packages/contracts and run `npm run contracts`.
"""Types and tables generated from packages/contracts."""
