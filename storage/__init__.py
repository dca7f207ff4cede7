"""Where the pipeline's files come from and go to beyond the home folder (object storage)."""
