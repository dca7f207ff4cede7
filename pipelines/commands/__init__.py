"""Sub-commands of `impact`, one module each, registered in pipelines/cli.py."""
