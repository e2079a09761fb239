"""Development only: the embedded AWS emulator, the demo and its sample data.

Installed with the `local` extra (`pip install campaign-workers[local]`, part of `dev`); the
production packages never import it (import-linter forbids it) and the Lambda package leaves it
out. The CLI's `demo` and `emulator` commands import it when they run.
"""
