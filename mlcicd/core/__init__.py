"""The pure core: plain functions and dataclasses, no Dagster. The Dagster shell in mlcicd/defs wires them."""
