"""The `margin-etl` command: options parsed, the pipeline called, the answers shown to people."""
