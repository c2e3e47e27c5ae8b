# The recipes a developer types. `just --list` shows them.

# Run the whole test suite (SQLite and PostgreSQL), as CI does.
test:
    scripts/test

# Run the service on its embedded defaults (SQLite file in the working directory).
run:
    cargo run --release -p rightsdesk -- serve

# Formatting, lints and the crate layering.
lint:
    cargo fmt --all --check
    cargo clippy --workspace --all-targets -- -D warnings
    scripts/check-layers

# Benchmarks; results are written to docs/performance.md.
bench:
    cargo build --release -p rightsdesk -p rightsdesk-bench
    cargo run --release -p rightsdesk-bench

# Print the OpenAPI document.
openapi:
    cargo run -q -p rightsdesk -- openapi
