"""`python -m cli`: the `margin-etl` command."""

from cli.main import main

main()
