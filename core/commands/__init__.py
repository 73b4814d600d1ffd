"""One module per `python -m core` command."""
