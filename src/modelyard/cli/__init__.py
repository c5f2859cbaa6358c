"""The ``modelyard`` command line: thin Typer adapters over the services."""
