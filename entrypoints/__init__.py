"""Lambda handlers, KCL process mains, the CLI, settings and the composition root."""
